package main

import "net/http"

// Error codes, one per kind of failure a client can act on. statusOf maps
// each to its HTTP status.
const (
	codeInvalid          = "invalid_request"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeConflict         = "conflict"
	codeLimitReached     = "limit_reached"
	codeTooManyRequests  = "too_many_requests"
	codeTooLarge         = "payload_too_large"
	codeUpstream         = "upstream_error"
	codeUpstreamTimeout  = "upstream_timeout"
	// codeUpstreamUnavailable: the catalogue counts as down and no
	// remembered page can stand in (503 with Retry-After).
	codeUpstreamUnavailable = "upstream_unavailable"
	codeUnavailable         = "unavailable"
	codeInternal            = "internal"
)

var statusOf = map[string]int{
	codeInvalid:             http.StatusBadRequest,
	codeUnauthorized:        http.StatusUnauthorized,
	codeNotFound:            http.StatusNotFound,
	codeMethodNotAllowed:    http.StatusMethodNotAllowed,
	codeConflict:            http.StatusConflict,
	codeLimitReached:        http.StatusConflict,
	codeTooManyRequests:     http.StatusTooManyRequests,
	codeTooLarge:            http.StatusRequestEntityTooLarge,
	codeUpstream:            http.StatusBadGateway,
	codeUpstreamTimeout:     http.StatusGatewayTimeout,
	codeUpstreamUnavailable: http.StatusServiceUnavailable,
	codeUnavailable:         http.StatusServiceUnavailable,
	codeInternal:            http.StatusInternalServerError,
}

// apiError is an error whose message is meant for the client. Any other
// error reaching writeError is a bug: it is logged and answered 500
// without its text.
type apiError struct {
	Code    string
	Message string
	Fields  map[string]string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func (e *apiError) status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func newError(code, message string) *apiError { return &apiError{Code: code, Message: message} }

// invalidFields reports field problems as one 400.
func invalidFields(fields map[string]string) *apiError {
	return &apiError{Code: codeInvalid, Message: "some fields are invalid", Fields: fields}
}

var (
	errUnauthorized       = newError(codeUnauthorized, "a valid bearer token is required")
	errBadCredentials     = newError(codeUnauthorized, "invalid username or password")
	errCollectionNotFound = newError(codeNotFound, "collection not found")
	errRouteNotFound      = newError(codeNotFound, "no such endpoint")
)
