// Package reportrender turns a rendered dashboard into a file: PDF, XLSX, CSV
// (zipped when more than one data widget) or HTML. It knows nothing of the
// database, of permissions or of delivery: core/reports builds a Document
// from what the recipient may see and hands it here.
package reportrender

import "time"

// Formats a report can be rendered in.
const (
	FormatPDF  = "pdf"
	FormatXLSX = "xlsx"
	FormatCSV  = "csv"
	FormatHTML = "html"
)

// Document is one rendered dashboard as a recipient may see it.
type Document struct {
	Title       string
	Description string
	GeneratedAt time.Time
	// Timezone names the zone GeneratedAt and dates are shown in.
	Timezone string
	// Filters are the dashboard filter values the data was computed with,
	// in the dashboard's declared order.
	Filters []FilterValue
	// Notice is shown under the title (e.g. "rendered with the report
	// owner's permissions" for an external recipient).
	Notice string
	// Widgets in grid order (top to bottom, then left to right).
	Widgets []Widget
}

// FilterValue is one applied dashboard filter.
type FilterValue struct {
	Name  string
	Label string
	Value string
}

// Widget types (the dashboards' widget types).
const (
	WidgetTable  = "table"
	WidgetNumber = "number"
	WidgetLine   = "line"
	WidgetBar    = "bar"
	WidgetArea   = "area"
	WidgetPie    = "pie"
	WidgetText   = "text"
)

// Widget is one widget's title and data, or its error.
type Widget struct {
	Title string
	Type  string
	// Text is a text widget's Markdown.
	Text string
	// Chart options: which column is the x axis / label and which are the
	// series (empty: first column and every numeric column after it).
	XColumn  string
	YColumns []string
	Columns  []Column
	Rows     [][]any
	// Truncated: the source had more rows than the widget's cap.
	Truncated bool
	// Error is the message shown instead of the data (no data, failed);
	// empty when the widget has data.
	Error string
}

// Column is a result column: name and the queries package's type name
// (integer, number, decimal, text, boolean, timestamp, date, time, binary or
// other).
type Column struct {
	Name string
	Type string
}
