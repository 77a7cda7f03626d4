// Command jsonfiles is an example third-party DataPulse connector, built only
// against plugins/sdk: a directory of JSON-lines files (*.jsonl, *.ndjson),
// each file a table, each line an object, each key a column.
//
// It answers a small query language:
//
//	SELECT * | item [, item ...]
//	  [FROM table [WHERE column op value [AND ...]]]
//	  [LIMIT n]
//
//	item:   column | ? | sleep(seconds)
//	op:     = != < <= > >=
//	value:  ? | number | 'text' | true | false | null
//
// "?" is a positional parameter, bound as a value (never spliced into the
// query). sleep(n) waits n seconds (at most 300) unless the query is
// cancelled, like pg_sleep; it exists to test timeouts.
//
// Build it and install it as described in docs/plugins.md:
//
//	CGO_ENABLED=0 go build -o jsonfiles ./plugins/examples/jsonfiles
package main

import "github.com/datapulse/datapulse/plugins/sdk"

func main() {
	sdk.Serve(newConnector())
}
