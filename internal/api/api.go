// Package api is qgate's HTTP plumbing shared by every handler: the error body and the single
// mapping from failure kinds to statuses, bearer-key authentication by role, request metrics and
// the access log. Domain handlers live in their own packages and call Fail and Require.
package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/fault"
)

// ErrorBody is the body of every 4xx/5xx: each problem names a path, a code and a message.
type ErrorBody struct {
	Errors []fault.Problem `json:"errors"`
}

// Status maps an error to its HTTP status. This is the only place that does so.
func Status(err error) int {
	switch {
	case errors.Is(err, fault.Malformed):
		return http.StatusBadRequest
	case errors.Is(err, fault.Unauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, fault.Forbidden):
		return http.StatusForbidden
	case errors.Is(err, fault.NotFound):
		return http.StatusNotFound
	case errors.Is(err, fault.Conflict):
		return http.StatusConflict
	case errors.Is(err, fault.TooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, fault.UnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, fault.Invalid):
		return http.StatusUnprocessableEntity
	case errors.Is(err, fault.Unavailable):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Fail aborts the request with err's status and body. Errors without problems get one built
// from the status; a 5xx never exposes internal error text, which is logged by the access log.
func Fail(c *gin.Context, err error) {
	status := Status(err)
	var fe *fault.Error
	var problems []fault.Problem
	if errors.As(err, &fe) {
		problems = fe.Problems
		if fe.RetryAfter > 0 {
			c.Header("Retry-After", strconv.Itoa(int((fe.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	if status >= 500 {
		_ = c.Error(err)
		if status == http.StatusServiceUnavailable && c.Writer.Header().Get("Retry-After") == "" {
			c.Header("Retry-After", "1")
		}
		if len(problems) == 0 || status == http.StatusInternalServerError {
			problems = []fault.Problem{{Code: "internal", Message: http.StatusText(status)}}
		}
	}
	if len(problems) == 0 {
		problems = []fault.Problem{{Code: codeFor(status), Message: err.Error()}}
	}
	if status == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="qgate"`)
	}
	c.AbortWithStatusJSON(status, ErrorBody{Errors: problems})
}

// NoRoute answers a path that names no endpoint with the usual error body.
func NoRoute(c *gin.Context) {
	Fail(c, fault.New(fault.NotFound, "", "route_not_found", "no endpoint at "+c.Request.URL.Path))
}

// NoMethod answers a known path asked with the wrong method: 405 with the usual error body.
// gin has already set the Allow header.
func NoMethod(c *gin.Context) {
	c.AbortWithStatusJSON(http.StatusMethodNotAllowed, ErrorBody{Errors: []fault.Problem{{
		Code: "method_not_allowed", Message: c.Request.Method + " is not allowed on " + c.Request.URL.Path,
	}}})
}

func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "malformed"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusUnprocessableEntity:
		return "invalid"
	default:
		return "error"
	}
}

// AccessLog logs one line per request at the boundary; 5xx carry the error that caused them.
// It never logs bodies or headers (they hold emails and secrets). Refusals (4xx) are logged at
// info, failures (5xx) at error, and the rest at debug: a line's fields are built only when its
// level is enabled, so at info a successful request costs the log nothing but a level check.
func AccessLog(log *zap.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		var ce *zapcore.CheckedEntry
		switch {
		case status >= 500:
			ce = log.Check(zap.ErrorLevel, "request failed")
		case status >= 400:
			ce = log.Check(zap.InfoLevel, "request refused")
		default:
			ce = log.Check(zap.DebugLevel, "request")
		}
		if ce == nil {
			return
		}
		fields := []zap.Field{
			zap.String("method", c.Request.Method),
			zap.String("route", c.FullPath()),
			zap.Int("status", status),
			zap.Duration("latency", time.Since(start)),
		}
		if id := c.GetString(keyIDCtx); id != "" {
			fields = append(fields, zap.String("keyId", id))
		}
		if status >= 500 {
			fields = append(fields, zap.String("error", c.Errors.String()))
		}
		ce.Write(fields...)
	}
}

// Recovery turns a panic into a logged 500 instead of a dropped connection.
func Recovery(log *zap.Logger) gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, rec any) {
		log.Error("panic in handler", zap.Any("panic", rec), zap.String("route", c.FullPath()))
		c.AbortWithStatusJSON(http.StatusInternalServerError, ErrorBody{Errors: []fault.Problem{{Code: "internal", Message: "internal error"}}})
	})
}

const keyIDCtx = "qgate.keyId"

// SetKeyID records the authenticated key's ID for the access log.
func SetKeyID(c *gin.Context, id string) { c.Set(keyIDCtx, id) }
