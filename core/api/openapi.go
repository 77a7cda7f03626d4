package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/queries"
)

// The OpenAPI document is the API's contract: every status an operation can
// answer is declared with the error envelope, and no other (the contract test
// in contract_test.go checks real answers against it).

// OpenAPIPath is where the document is served (as .json and .yaml).
const OpenAPIPath = "/api/v1/openapi"

// Error statuses an operation declares in its huma.Operation.Errors on top of
// those documentOperation derives from its shape (access level, parameters,
// body).
var (
	// upstreamErrors: the operation opens a data source through its connector.
	upstreamErrors = []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
)

// errorResponses are the shared error responses (components/responses), by status.
var errorResponses = map[int]struct{ name, desc string }{
	http.StatusBadRequest:                  {"BadRequest", "The request is invalid: malformed JSON, a parameter or body field failing validation (code validation_failed, details.fields lists them)."},
	http.StatusUnauthorized:                {"Unauthorized", "No valid credentials (code unauthenticated)."},
	http.StatusForbidden:                   {"Forbidden", "The caller may not do this (code forbidden): not an administrator, a read-only token, or no permission on the object."},
	http.StatusNotFound:                    {"NotFound", "No such object, or one the caller may not see (code not_found). A malformed id is answered the same way."},
	http.StatusConflict:                    {"Conflict", "The change conflicts with the current state (code conflict), e.g. a duplicate name."},
	http.StatusRequestEntityTooLarge:       {"PayloadTooLarge", "The request body is larger than the server's limit (code payload_too_large)."},
	http.StatusUnsupportedMediaType:        {"UnsupportedMediaType", "The request body is not JSON (code unsupported_media_type)."},
	http.StatusTooManyRequests:             {"TooManyRequests", "Rate-limited (code rate_limited); Retry-After says when to try again."},
	http.StatusRequestHeaderFieldsTooLarge: {"RequestHeaderFieldsTooLarge", "The request headers are too large."},
	http.StatusInternalServerError:         {"InternalError", "An unexpected failure (code internal); quote error.request_id when reporting it."},
	http.StatusBadGateway:                  {"UpstreamError", "The data source or its connector failed (code upstream_error)."},
	http.StatusServiceUnavailable:          {"Unavailable", "Temporarily unavailable (code unavailable), e.g. a connector that is not installed or not running."},
	http.StatusGatewayTimeout:              {"UpstreamTimeout", "The data source did not answer in time (code upstream_timeout)."},
}

// schemaNames renames schemas whose default names (from Go type names or
// huma's hints for anonymous bodies) mean nothing to a generated client.
var schemaNames = map[string]string{
	"ErrorBody":                   "Error",
	"LoginInputBody":              "LoginCredentials",
	"RefreshInputBody":            "RefreshGrant",
	"LogoutInputBody":             "LogoutOptions",
	"Tokens":                      "TokenPair",
	"UpdateMeInputBody":           "MeUpdate",
	"ChangePasswordInputBody":     "PasswordChange",
	"ProfileInputBody":            "ProfileUpdate",
	"CreateTokenInputBody":        "APITokenCreate",
	"TokenListOutputBody":         "APITokenList",
	"CreateUserInputBody":         "UserCreate",
	"UpdateUserInputBody":         "UserUpdate",
	"UserRolesOutputBody":         "RoleAssignmentList",
	"AssignRoleInputBody":         "RoleAssignmentCreate",
	"CreateDepartmentInputBody":   "DepartmentCreate",
	"DepartmentBody":              "DepartmentUpdate",
	"CreateRoleInputBody":         "RoleCreate",
	"UpdateRoleInputBody":         "RoleUpdate",
	"CreateDashboardInputBody":    "DashboardCreate",
	"UpdateDashboardInputBody":    "DashboardUpdate",
	"DuplicateDashboardInputBody": "DashboardDuplicate",
	"Document":                    "DashboardDocument",
	"DocumentWidget":              "DashboardDocumentWidget",
	"CreateWidgetInputBody":       "WidgetCreate",
	"UpdateWidgetInputBody":       "WidgetUpdate",
	"Position":                    "WidgetPosition",
	"LayoutInputBody":             "LayoutUpdate",
	"Item":                        "WidgetMove", // an element of LayoutUpdate.widgets
	"WidgetListOutputBody":        "WidgetList",
	"ShareListOutputBody":         "ShareList",
	"PutShareInputBody":           "ShareUpdate",
	"ConnectorsOutputBody":        "ConnectorList",
	"ConnectorView":               "Connector",
	"CreateDataSourceInputBody":   "DataSourceCreate",
	"UpdateDataSourceInputBody":   "DataSourceUpdate",
	"HealthOutputBody":            "Health",
	"HealthOutputDSBody":          "DataSourceHealth",
	"InvalidateOutputBody":        "CacheInvalidation",
	"Schema":                      "DataSourceSchema",
	"AdHocInputBody":              "AdHocQuery",
	"RunSavedInputBody":           "QueryRun",
	"CreateQueryInputBody":        "SavedQueryCreate",
	"UpdateQueryInputBody":        "SavedQueryUpdate",
	"Result":                      "QueryResult",
	"Column":                      "ResultColumn",
	"Config":                      "DataModelConfig",
	"CreateDataModelInputBody":    "DataModelCreate",
	"UpdateDataModelInputBody":    "DataModelUpdate",
	"CheckResult":                 "DataModelCheck",
	"Explained":                   "ModelQueryExplanation",
	"Request":                     "ModelQuery",
	"Filter":                      "ModelFilter",
	"Expr":                        "ModelExpr",
	"ExprArg":                     "ModelExprArg",
	"Dimension":                   "ModelDimension",
	"Measure":                     "ModelMeasure",
	"Join":                        "ModelJoin",
	"JoinKey":                     "ModelJoinKey",
	"TableRef":                    "ModelTable",
	"DashboardDataOutputBody":     "DashboardData",
	"WidgetDataView":              "WidgetData",
}

// schemaName is the registry's namer: huma's default, then schemaNames, and
// paging.Page[T] as TPage.
func schemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	if n, ok := schemaNames[name]; ok {
		return n
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if strings.HasPrefix(t.Name(), "Page[") && strings.HasSuffix(t.PkgPath(), "/paging") && strings.HasPrefix(name, "Page") {
		inner := strings.TrimPrefix(name, "Page")
		if n, ok := schemaNames[inner]; ok {
			inner = n
		}
		return inner + "Page"
	}
	return name
}

// uuidSchema stands for uuid.UUID in schemas: a string in uuid format.
type uuidSchema struct{}

func (uuidSchema) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, Format: "uuid"}
}

// configureOpenAPI sets the document-wide parts of cfg before any route.
func configureOpenAPI(cfg *huma.Config) {
	reg := huma.NewMapRegistry("#/components/schemas/", schemaName)
	reg.RegisterTypeAlias(reflect.TypeFor[uuid.UUID](), reflect.TypeFor[uuidSchema]())
	cfg.Components.Schemas = reg
	cfg.Servers = []*huma.Server{{
		URL:         "{scheme}://{host}",
		Description: "A DataPulse server (the paths include /api/v1).",
		Variables: map[string]*huma.ServerVariable{
			"scheme": {Default: "http", Enum: []string{"http", "https"}},
			"host":   {Default: "localhost:8080", Description: "host and port the server listens on (datapulse serve --addr)"},
		},
	}}
	cfg.Tags = []*huma.Tag{
		{Name: "system", Description: "Liveness, readiness and this document."},
		{Name: "auth", Description: "Sessions: login, token refresh, logout."},
		{Name: "me", Description: "The caller's own account and profile."},
		{Name: "tokens", Description: "Personal API tokens."},
		{Name: "users", Description: "User administration (administrators)."},
		{Name: "departments", Description: "Departments (administrators)."},
		{Name: "roles", Description: "Roles and their permissions (administrators)."},
		{Name: "dashboards", Description: "Dashboards, their export/import and rendering."},
		{Name: "widgets", Description: "Widgets on a dashboard."},
		{Name: "shares", Description: "Sharing dashboards with users."},
		{Name: "connectors", Description: "Installed connectors."},
		{Name: "data sources", Description: "Data sources and ad-hoc SQL."},
		{Name: "queries", Description: "Saved queries."},
		{Name: "data models", Description: "Semantic data models and their queries."},
	}
	cfg.Components.Responses = map[string]*huma.Response{}
	errSchema := &huma.Schema{Ref: "#/components/schemas/Error"}
	for status, r := range errorResponses {
		resp := &huma.Response{
			Description: r.desc,
			Headers: map[string]*huma.Param{
				requestIDHeader: {Description: "the request's id, also in error.request_id", Schema: &huma.Schema{Type: huma.TypeString}},
			},
			Content: map[string]*huma.MediaType{"application/json": {Schema: errSchema}},
		}
		switch status {
		case http.StatusUnauthorized:
			resp.Headers["WWW-Authenticate"] = &huma.Param{Description: "Bearer challenge", Schema: &huma.Schema{Type: huma.TypeString}}
		case http.StatusTooManyRequests:
			resp.Headers["Retry-After"] = &huma.Param{Description: "seconds to wait", Schema: &huma.Schema{Type: huma.TypeInteger, Minimum: ptr(0.0)}}
		}
		cfg.Components.Responses[r.name] = resp
	}
}

func ptr[T any](v T) *T { return &v }

// documentOperation completes an operation as huma adds it to the document:
// its error statuses with the shared error responses, and its security.
func documentOperation(_ *huma.OpenAPI, op *huma.Operation) {
	access, ok := op.Metadata["access"].(Access)
	if !ok {
		return // not from register: documented by hand
	}
	set := map[int]bool{http.StatusInternalServerError: true, http.StatusRequestHeaderFieldsTooLarge: true}
	for _, c := range op.Errors {
		if c != http.StatusUnprocessableEntity { // huma's; the server answers 400 instead
			set[c] = true
		}
	}
	hasBody := op.RequestBody != nil
	if hasBody || len(op.Parameters) > 0 {
		set[http.StatusBadRequest] = true
	}
	if access >= Optional {
		// 403 for Optional too: a read-only token on a POST.
		set[http.StatusUnauthorized], set[http.StatusForbidden] = true, true
	}
	if strings.Contains(op.Path, "{") {
		set[http.StatusNotFound] = true
	}
	if hasBody {
		set[http.StatusRequestEntityTooLarge], set[http.StatusUnsupportedMediaType] = true, true
	}
	for code := range op.Responses {
		if n, err := strconv.Atoi(code); code == "default" || err == nil && n >= 400 {
			delete(op.Responses, code)
		}
	}
	op.Errors = make([]int, 0, len(set))
	for code := range set {
		r, ok := errorResponses[code]
		if !ok {
			panic("api: no shared error response for status " + strconv.Itoa(code) + " of " + op.OperationID)
		}
		op.Responses[strconv.Itoa(code)] = &huma.Response{Ref: "#/components/responses/" + r.name}
		op.Errors = append(op.Errors, code)
	}
	slices.Sort(op.Errors)

	switch access {
	case Public:
		op.Security = []map[string][]string{} // serialized as security: []
	case Optional:
		op.Security = []map[string][]string{{"bearer": {}}, {}}
	default:
		op.Security = []map[string][]string{{"bearer": {}}}
	}
	// Path ids are UUIDs; a malformed one is answered 404 like an unknown
	// one, so the format is documented here without huma validating it
	// (this copy of the schema is the document's only).
	for i, p := range op.Parameters {
		if p.In == "path" && (p.Name == "id" || strings.HasSuffix(p.Name, "_id")) && p.Schema != nil {
			sc := *p.Schema
			sc.Format = "uuid"
			sc.MaxLength = nil
			cp := *p
			cp.Schema = &sc
			op.Parameters[i] = &cp
		}
	}
}

// finishOpenAPI completes the document once every route is registered.
func (s *Server) finishOpenAPI() {
	oapi := s.api.OpenAPI()
	reg := oapi.Components.Schemas
	markNullable(reg)
	applyEnums(reg)

	// The model query's JSON answer is the result, or with ?explain=true the
	// compiled SQL.
	if pi := oapi.Paths["/api/v1/data-models/{id}/query"]; pi != nil && pi.Post != nil {
		if mt := pi.Post.Responses["200"].Content["application/json"]; mt != nil {
			explained := reg.Schema(reflect.TypeFor[datamodels.Explained](), true, "ModelQueryExplanation")
			mt.Schema = &huma.Schema{OneOf: []*huma.Schema{mt.Schema, explained}}
		}
	}

	// The document itself.
	docOp := &huma.Operation{
		OperationID: "getOpenAPI", Method: http.MethodGet, Path: OpenAPIPath + ".json", Tags: []string{"system"},
		Summary:  "This OpenAPI document",
		Security: []map[string][]string{},
		Responses: map[string]*huma.Response{
			"200": {Description: "The OpenAPI 3.1 document.", Content: map[string]*huma.MediaType{
				"application/openapi+json": {Schema: &huma.Schema{Type: huma.TypeObject, Description: "an OpenAPI 3.1 document"}},
			}},
			"431": {Ref: "#/components/responses/RequestHeaderFieldsTooLarge"},
			"500": {Ref: "#/components/responses/InternalError"},
		},
	}
	oapi.AddOperation(docOp)
}

// markNullable makes every pointer field that is sent without omitempty
// nullable: huma leaves pointers to arrays (uuid.UUID) and structs as
// non-nullable, though the server sends null for nil.
func markNullable(reg huma.Registry) {
	prefix := "#/components/schemas/"
	for name, sc := range reg.Map() {
		t := reg.TypeFromRef(prefix + name)
		if t == nil || t.Kind() != reflect.Struct || sc.Properties == nil {
			continue
		}
		forEachField(t, func(f reflect.StructField, jsonName string, omitempty bool) {
			if f.Type.Kind() != reflect.Pointer || omitempty {
				return
			}
			p := sc.Properties[jsonName]
			switch {
			case p == nil || p.Nullable:
			case p.Ref != "":
				sc.Properties[jsonName] = &huma.Schema{
					OneOf:       []*huma.Schema{{Ref: p.Ref}, {Type: "null"}},
					Description: p.Description,
				}
			case p.Type != "":
				p.Nullable = true
			}
		})
	}
}

// forEachField calls fn for every JSON field of struct t, flattening
// embedded structs the way encoding/json does.
func forEachField(t reflect.Type, fn func(f reflect.StructField, jsonName string, omitempty bool)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				forEachField(et, fn)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fn(f, name, strings.Contains(","+opts+",", ",omitempty,"))
	}
}

// enums are the value sets the services enforce on fields of types this
// package cannot tag (ent/schema/types, core/models), by schema and property.
// An entry naming a property that does not exist fails the contract test.
var enums = map[string]map[string][]string{
	"ModelDimension": {"type": {"string", "number", "time", "boolean"}},
	"ModelJoin":      {"type": {"left", "inner"}},
}

// applyEnums sets the enums above; arrays get them on their items.
func applyEnums(reg huma.Registry) {
	prefix := "#/components/schemas/"
	for name, props := range enums {
		sc := reg.SchemaFromRef(prefix + name)
		if sc == nil {
			continue
		}
		for prop, values := range props {
			p := sc.Properties[prop]
			if p == nil {
				continue
			}
			if p.Items != nil {
				p = p.Items
			}
			p.Enum = make([]any, len(values))
			for i, v := range values {
				p.Enum[i] = v
			}
			p.PrecomputeMessages()
		}
	}
	_ = models.Grains
	_ = queries.Result{}
}

// OpenAPIJSON is the document as the server serves it.
func (s *Server) OpenAPIJSON() ([]byte, error) {
	return json.Marshal(s.api.OpenAPI())
}
