package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qgate/qgate/internal/fault"
)

// TestAccessLogLevels: at info level a successful request writes no line, a refusal writes one
// at info and a failure one at error with its cause; at debug the success is logged too.
func TestAccessLogLevels(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	for _, tc := range []struct {
		level   zapcore.Level
		path    string
		want    zapcore.Level
		logged  bool
		message string
	}{
		{zap.InfoLevel, "/ok", 0, false, ""},
		{zap.InfoLevel, "/refused", zap.InfoLevel, true, "request refused"},
		{zap.InfoLevel, "/failed", zap.ErrorLevel, true, "request failed"},
		{zap.DebugLevel, "/ok", zap.DebugLevel, true, "request"},
		{zap.ErrorLevel, "/refused", 0, false, ""},
	} {
		core, logs := observer.New(tc.level)
		e := gin.New()
		e.Use(AccessLog(zap.New(core)))
		e.GET("/ok", func(c *gin.Context) { SetKeyID(c, "k1"); c.Status(http.StatusAccepted) })
		e.GET("/refused", func(c *gin.Context) { Fail(c, fault.New(fault.Invalid, "a", "b", "c")) })
		e.GET("/failed", func(c *gin.Context) { Fail(c, errors.Join(fault.Unavailable, errors.New("broker gone"))) })
		e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
		entries := logs.All()
		if !tc.logged {
			if len(entries) != 0 {
				t.Errorf("level %s, %s: logged %v, want nothing", tc.level, tc.path, entries)
			}
			continue
		}
		if len(entries) != 1 || entries[0].Level != tc.want || entries[0].Message != tc.message {
			t.Fatalf("level %s, %s: logged %v, want one %q at %s", tc.level, tc.path, entries, tc.message, tc.want)
		}
		f := entries[0].ContextMap()
		if f["route"] != tc.path || f["method"] != http.MethodGet || f["status"] == nil || f["latency"] == nil {
			t.Errorf("%s: fields %v", tc.path, f)
		}
		if tc.path == "/failed" && f["error"] == nil {
			t.Errorf("a failure's line has no error: %v", f)
		}
		if tc.path == "/ok" && f["keyId"] != "k1" {
			t.Errorf("keyId %v, want k1", f["keyId"])
		}
	}
}
