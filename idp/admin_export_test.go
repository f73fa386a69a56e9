package idp

// AdminOperation is one operation of the admin API as mounted.
type AdminOperation struct {
	Method      string
	Pattern     string // e.g. /admin/v1/users/{username}
	OperationID string // as in api/openapi.yaml and the audit events
}

// AdminOperations lists the admin API's operations, for the test that
// compares them with api/openapi.yaml.
func AdminOperations(s *Server) []AdminOperation {
	var out []AdminOperation
	for _, rt := range s.adminRoutes() {
		for _, m := range rt.methods {
			out = append(out, AdminOperation{Method: m.method, Pattern: rt.pattern, OperationID: m.operation})
		}
	}
	return out
}
