package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/models"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/policy"
)

// The OpenAPI document is the API's contract: every status an operation can
// answer is declared with the error envelope, and no other (the contract test
// in contract_test.go checks real answers against it).
//
// huma validates requests with the schemas of its registry. What this file
// adds to schemas (formats, value sets, patterns, nullability) goes into a
// copy served as the document, so documenting a rule never changes how a
// request is answered: the services keep enforcing them, with their own
// field names and messages.

// OpenAPIPath is where the document is served (as .json and .yaml).
const OpenAPIPath = "/api/v1/openapi"

// Error statuses an operation declares in its huma.Operation.Errors on top of
// those documentOperation derives from its shape (access level, parameters,
// body).
var (
	// upstreamErrors: the operation opens a data source through its connector.
	upstreamErrors = []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
)

// databaseFree are the operations that never touch the metadata database;
// every other one can answer 503 while the database is unavailable.
var databaseFree = map[string]bool{"healthz": true}

// errorResponses are the shared error responses (components/responses), by status.
var errorResponses = map[int]struct{ name, desc string }{
	http.StatusBadRequest:                  {"BadRequest", "The request is invalid: malformed JSON, a parameter or body field failing validation (code validation_failed, details.fields lists them)."},
	http.StatusUnauthorized:                {"Unauthorized", "No valid credentials (code unauthenticated)."},
	http.StatusForbidden:                   {"Forbidden", "The caller may not do this (code forbidden): not an administrator, a read-only token, or no permission on the object."},
	http.StatusNotFound:                    {"NotFound", "No such object, or one the caller may not see (code not_found). A malformed id is answered the same way."},
	http.StatusConflict:                    {"Conflict", "The change conflicts with the current state (code conflict), e.g. a duplicate name. On an operation taking Idempotency-Key also: a request with the same key is still in progress (code idempotency_key_in_use, with Retry-After), or the first one was interrupted and its outcome is unknown (code idempotency_outcome_unknown)."},
	http.StatusRequestEntityTooLarge:       {"PayloadTooLarge", "The request body is larger than the server's limit (code payload_too_large)."},
	http.StatusUnprocessableEntity:         {"IdempotencyKeyReused", "The Idempotency-Key was already used by the caller with a different request (another body, query or route) (code idempotency_key_reused); nothing was done."},
	http.StatusUnsupportedMediaType:        {"UnsupportedMediaType", "The request body is not JSON (code unsupported_media_type)."},
	http.StatusTooManyRequests:             {"TooManyRequests", "Rate-limited (code rate_limited); Retry-After says when to try again."},
	http.StatusRequestHeaderFieldsTooLarge: {"RequestHeaderFieldsTooLarge", "The request headers are too large."},
	http.StatusInternalServerError:         {"InternalError", "An unexpected failure (code internal); quote error.request_id when reporting it."},
	http.StatusBadGateway:                  {"UpstreamError", "The data source or its connector failed (code upstream_error)."},
	http.StatusServiceUnavailable:          {"Unavailable", "Temporarily unavailable (code unavailable): the metadata database is unreachable, restarting, in recovery or read-only, or a data source or its connector is down or not installed. Retry-After says when to try again."},
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
	"SchemaTable":                 "DataSourceTable",
	"SchemaColumn":                "DataSourceColumn",
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

const schemaPrefix = "#/components/schemas/"

// configureOpenAPI sets the document-wide parts of cfg before any route.
func configureOpenAPI(cfg *huma.Config) {
	cfg.Components.Schemas = huma.NewMapRegistry(schemaPrefix, schemaName)
	cfg.OpenAPIPath = "" // served by serveOpenAPI, from the documented copy
	cfg.Servers = []*huma.Server{{
		URL:         "{scheme}://{host}",
		Description: "A DataPulse server (the paths include /api/v1).",
		Variables: map[string]*huma.ServerVariable{
			"scheme": {Default: "http", Enum: []string{"http", "https"}},
			"host":   {Default: config.DefaultAddr, Description: "host and port the server listens on (datapulse serve --addr)"},
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
	cfg.Info.Description += "\n\nEvery error is answered as {\"error\": {\"code\", \"message\", \"details\", \"request_id\"}} " +
		"(the Error schema), also outside the operations listed here: 404 not_found for an unknown path, " +
		"405 method_not_allowed for a known path with another method."
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
		case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusConflict:
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
	if !databaseFree[op.OperationID] {
		set[http.StatusServiceUnavailable] = true
	}
	for _, c := range op.Errors {
		if c != http.StatusUnprocessableEntity { // huma's; the server answers 400 instead
			set[c] = true
		}
	}
	if isIdempotent(op) {
		documentIdempotency(op)
		set[http.StatusConflict], set[http.StatusUnprocessableEntity] = true, true
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
	// one, so the format is documented on a copy of the parameter's schema,
	// which huma does not validate with. The sort parameter's values
	// likewise (the paging service checks them: 400).
	for i, p := range op.Parameters {
		if p.Schema == nil {
			continue
		}
		sc := *p.Schema
		switch {
		case p.In == "path" && (p.Name == "id" || strings.HasSuffix(p.Name, "_id")):
			sc.Format = "uuid"
			sc.MaxLength = nil
		case p.In == "query" && p.Name == "sort":
			fields, ok := sortFields[op.OperationID]
			if !ok {
				panic("api: no sortFields for " + op.OperationID)
			}
			sc.MaxLength = nil
			for _, f := range fields {
				sc.Enum = append(sc.Enum, f, "-"+f)
			}
		default:
			continue
		}
		cp := *p
		cp.Schema = &sc
		op.Parameters[i] = &cp
	}
}

// finishOpenAPI completes the document once every route is registered and
// serves it.
func (s *Server) finishOpenAPI() {
	oapi := s.api.OpenAPI()
	valReg := oapi.Components.Schemas

	// The model query's JSON answer is the result, or with ?explain=true the
	// compiled SQL.
	if pi := oapi.Paths["/api/v1/data-models/{id}/query"]; pi != nil && pi.Post != nil {
		if mt := pi.Post.Responses["200"].Content["application/json"]; mt != nil {
			explained := valReg.Schema(reflect.TypeFor[datamodels.Explained](), true, "ModelQueryExplanation")
			mt.Schema = &huma.Schema{OneOf: []*huma.Schema{mt.Schema, explained}}
		}
	}

	// The document itself.
	oapi.AddOperation(&huma.Operation{
		OperationID: "getOpenAPI", Method: http.MethodGet, Path: OpenAPIPath + ".json", Tags: []string{"system"},
		Summary:     "This OpenAPI document",
		Description: "Also as YAML (" + OpenAPIPath + ".yaml) and downgraded to OpenAPI 3.0 (" + OpenAPIPath + "-3.0.json, -3.0.yaml).",
		Security:    []map[string][]string{},
		Responses: map[string]*huma.Response{
			"200": {Description: "The OpenAPI 3.1 document.", Content: map[string]*huma.MediaType{
				"application/openapi+json": {Schema: &huma.Schema{Type: huma.TypeObject, Description: "an OpenAPI 3.1 document"}},
			}},
			"431": {Ref: "#/components/responses/RequestHeaderFieldsTooLarge"},
			"500": {Ref: "#/components/responses/InternalError"},
		},
	})

	// The documented copy of the schemas.
	docReg := huma.NewMapRegistry(schemaPrefix, schemaName)
	for name, sc := range valReg.Map() {
		docReg.Map()[name] = cloneSchema(sc)
	}
	documentFields(valReg, docReg)
	applyConstraints(docReg)
	// details: free-form, with the fields at fault for validation_failed
	// (errs.FieldError, from data model checks, has api.FieldError's shape).
	if info := docReg.Map()["ErrorInfo"]; info != nil && info.Properties["details"] != nil && docReg.Map()["FieldError"] != nil {
		info.Properties["details"].Properties = map[string]*huma.Schema{"fields": {
			Type: huma.TypeArray, Items: &huma.Schema{Ref: schemaPrefix + "FieldError"},
			Description: "the fields at fault (validation_failed)",
		}}
	}
	doc := *oapi
	comps := *oapi.Components
	comps.Schemas = docReg
	doc.Components = &comps
	s.doc = &doc
	s.serveOpenAPI()
}

// serveOpenAPI serves the document as huma would (JSON, YAML, and both
// downgraded to OpenAPI 3.0), from the documented copy.
func (s *Server) serveOpenAPI() {
	type variant struct {
		suffix, contentType string
		render              func() ([]byte, error)
	}
	for _, v := range []variant{
		{".json", "application/openapi+json", s.OpenAPIJSON},
		{".yaml", "application/openapi+yaml", s.doc.YAML},
		{"-3.0.json", "application/openapi+json", s.doc.Downgrade},
		{"-3.0.yaml", "application/openapi+yaml", s.doc.DowngradeYAML},
	} {
		var once sync.Once
		var body []byte
		var err error
		path := OpenAPIPath + v.suffix
		s.app.Get(path, func(c *fiber.Ctx) error {
			c.Locals(routeKey{}, path)
			once.Do(func() { body, err = v.render() })
			if err != nil {
				return err
			}
			c.Set("Content-Type", v.contentType)
			return c.Send(body)
		})
	}
}

// cloneSchema copies a schema with everything this file may change in it;
// references stay references.
func cloneSchema(sc *huma.Schema) *huma.Schema {
	if sc == nil {
		return nil
	}
	cp := *sc
	if sc.Properties != nil {
		cp.Properties = make(map[string]*huma.Schema, len(sc.Properties))
		for k, v := range sc.Properties {
			cp.Properties[k] = cloneSchema(v)
		}
	}
	cp.Items = cloneSchema(sc.Items)
	if ap, ok := sc.AdditionalProperties.(*huma.Schema); ok {
		cp.AdditionalProperties = cloneSchema(ap)
	}
	cp.Enum = slices.Clone(sc.Enum)
	for _, list := range []*[]*huma.Schema{&cp.OneOf, &cp.AnyOf, &cp.AllOf} {
		if *list != nil {
			c := make([]*huma.Schema, len(*list))
			for i, v := range *list {
				c[i] = cloneSchema(v)
			}
			*list = c
		}
	}
	cp.Not = cloneSchema(sc.Not)
	return &cp
}

var uuidType = reflect.TypeFor[uuid.UUID]()

// documentFields completes the documented schemas from the Go types of the
// validating registry: uuid.UUID fields (huma sees a plain string) are in
// uuid format, and every pointer field sent without omitempty is nullable
// (huma leaves pointers to arrays, such as uuid.UUID, and to structs
// non-nullable, though the server sends null for nil).
func documentFields(valReg, docReg huma.Registry) {
	for name, sc := range docReg.Map() {
		t := valReg.TypeFromRef(schemaPrefix + name)
		if t == nil || t.Kind() != reflect.Struct || sc.Properties == nil {
			continue
		}
		forEachField(t, func(f reflect.StructField, jsonName string, omitempty bool) {
			p := sc.Properties[jsonName]
			if p == nil {
				return
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				if ft.Kind() == reflect.Slice && p.Items != nil {
					if ft.Elem() == uuidType || ft.Elem().Kind() == reflect.Pointer && ft.Elem().Elem() == uuidType {
						p.Items.Format = "uuid"
					}
				}
				ft = ft.Elem()
			}
			if ft == uuidType && p.Type == huma.TypeString {
				p.Format = "uuid"
			}
			if f.Type.Kind() != reflect.Pointer || omitempty {
				return
			}
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

// constraint is a value set, pattern or format a service enforces on a field of a
// type this package cannot tag (ent/schema/types, core/models, identity…).
// Values come from the services' own exported lists where there is one.
type constraint struct {
	enum    []string
	pattern string
	format  string
}

func strs[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

var (
	widgetTypes     = []string{"table", "number", "line", "bar", "area", "pie", "text"} // dashboards.widgetTypes
	filterTypes     = []string{"text", "number", "date", "datetime", "boolean"}         // dashboards.filterTypes
	paramTypes      = []string{queries.TypeText, queries.TypeNumber, queries.TypeDate, queries.TypeDatetime, queries.TypeBoolean, queries.TypeEnum, queries.TypeList}
	paramItemTypes  = []string{queries.TypeText, queries.TypeNumber, queries.TypeDate, queries.TypeDatetime, queries.TypeEnum}
	tokenScopes     = []string{"read", "write"} // identity.CreateAPIToken
	dimensionTypes  = []string{models.TypeString, models.TypeNumber, models.TypeBoolean, models.TypeTime}
	aggregations    = []string{models.AggCount, models.AggCountDistinct, models.AggSum, models.AggAvg, models.AggMin, models.AggMax}
	joinTypes       = []string{"left", "inner"}
	filterOperators = []string{models.OpEq, models.OpNe, models.OpGt, models.OpGe, models.OpLt, models.OpLe, models.OpIn, models.OpNotIn,
		models.OpBetween, models.OpContains, models.OpIsNull, models.OpIsNotNull, models.OpLast, models.OpThis, models.OpToday, models.OpYesterday}
	modelName = `^[A-Za-z_][A-Za-z0-9_]{0,62}$` // models.IsName
)

// constraints by schema, then property (an array property constrains its
// items). A schema or property that does not exist fails TestOpenAPIDocument.
var constraints = map[string]map[string]constraint{
	"Widget":                  {"type": {enum: widgetTypes}},
	"WidgetCreate":            {"type": {enum: widgetTypes}},
	"WidgetUpdate":            {"type": {enum: widgetTypes}},
	"WidgetData":              {"type": {enum: widgetTypes}},
	"DashboardDocumentWidget": {"type": {enum: widgetTypes}},
	"DashboardFilter":         {"type": {enum: filterTypes}},
	"QueryParameter":          {"type": {enum: paramTypes}, "item_type": {enum: paramItemTypes}},
	"APIToken":                {"scopes": {enum: tokenScopes}},
	"NewAPIToken":             {"scopes": {enum: tokenScopes}},
	"APITokenCreate":          {"scopes": {enum: tokenScopes}},
	"Role":                    {"permissions": {enum: strs(policy.Actions)}, "name": {pattern: `^[a-z][a-z0-9_-]{0,49}$`}},
	"RoleCreate":              {"permissions": {enum: strs(policy.Actions)}, "name": {pattern: `^\s*[a-z][a-z0-9_-]{0,49}\s*$`}},
	"RoleUpdate":              {"permissions": {enum: strs(policy.Actions)}, "name": {pattern: `^\s*[a-z][a-z0-9_-]{0,49}\s*$`}},
	"ProfileUpdate":           {"phone": {pattern: `^(\+?[0-9 ()./-]{3,50})?$`}},
	"ModelDimension":          {"type": {enum: dimensionTypes}, "grains": {enum: models.Grains}, "name": {pattern: modelName}},
	"ModelMeasure":            {"agg": {enum: aggregations}, "name": {pattern: modelName}},
	"ModelJoin":               {"type": {enum: joinTypes}, "alias": {pattern: modelName}},
	"ModelFilter":             {"op": {enum: filterOperators}},
	"ModelQuery":              {"time_grain": {enum: models.Grains}},
	"DataModelConfig":         {"data_source_id": {format: "uuid"}, "saved_query_id": {format: "uuid"}},
}

// sortFields are the fields each list sorts by (the services' SortField
// calls); the sort parameter takes one, or one prefixed with - (descending).
var sortFields = map[string][]string{
	"listUsers":       {"created_at", "updated_at", "email", "name", "role"},
	"listDepartments": {"name", "created_at", "updated_at"},
	"listRoles":       {"name", "created_at"},
	"listDashboards":  {"name", "created_at", "updated_at"},
	"listDataSources": {"name", "created_at", "updated_at", "type", "status"},
	"listQueries":     {"name", "created_at", "updated_at"},
	"listDataModels":  {"name", "created_at", "updated_at"},
	// alerts (core/alerting)
	"listAlerts":             {"metric", "created_at", "updated_at", "status", "state"},
	"alertHistory":           {"created_at"},
	"listAlertNotifications": {"sent_at", "state"},
}

// applyConstraints sets the constraints above on the documented schemas.
func applyConstraints(reg huma.Registry) {
	for name, props := range constraints {
		sc := reg.Map()[name]
		if sc == nil {
			panic("api: constraints name schema " + name + ", which does not exist")
		}
		for prop, c := range props {
			p := sc.Properties[prop]
			if p == nil {
				panic("api: constraints name " + name + "." + prop + ", which does not exist")
			}
			if p.Items != nil {
				p = p.Items
			}
			if c.enum != nil {
				p.Enum = make([]any, len(c.enum))
				for i, v := range c.enum {
					p.Enum[i] = v
				}
			}
			if c.pattern != "" {
				p.Pattern = c.pattern
			}
			if c.format != "" {
				p.Format = c.format
			}
		}
	}
}

// OpenAPIJSON is the document as the server serves it.
func (s *Server) OpenAPIJSON() ([]byte, error) {
	return json.Marshal(s.doc)
}
