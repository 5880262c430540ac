package support

import (
	"embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed ui
var uiFiles embed.FS

// CSP is the support page's Content-Security-Policy: its own script, styles and API only (no
// inline script or style, no eval), no plugins, no <base>, no form posts anywhere, never framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// RegisterUI serves the support page at /ui. The page itself is public; it asks for a support
// key and calls the support API with it, so it shows nothing without one.
func RegisterUI(e *gin.Engine) {
	serve := func(name, ctype string) gin.HandlerFunc {
		body, err := uiFiles.ReadFile("ui/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		return func(c *gin.Context) {
			c.Header("Content-Security-Policy", CSP)
			c.Header("Referrer-Policy", "no-referrer")
			c.Header("X-Content-Type-Options", "nosniff")
			c.Header("Cache-Control", "no-cache")
			c.Data(http.StatusOK, ctype, body)
		}
	}
	e.GET("/ui", serve("index.html", "text/html; charset=utf-8"))
	e.GET("/ui/app.js", serve("app.js", "text/javascript; charset=utf-8"))
	e.GET("/ui/style.css", serve("style.css", "text/css; charset=utf-8"))
}
