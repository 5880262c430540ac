package survey

import (
	"embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

//go:embed ui
var uiFiles embed.FS

// RegisterUI serves the survey pages at /ui/surveys (with the support page's style). The page
// is public; it asks for a support or operator key and reads the people pages API with it.
func RegisterUI(e *gin.Engine) {
	serve := func(name, ctype string) gin.HandlerFunc {
		body, err := uiFiles.ReadFile("ui/" + name)
		if err != nil {
			panic(err) // embedded at build time
		}
		return func(c *gin.Context) {
			c.Header("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
			c.Header("X-Content-Type-Options", "nosniff")
			c.Header("Cache-Control", "no-cache")
			c.Data(http.StatusOK, ctype, body)
		}
	}
	e.GET("/ui/surveys", serve("surveys.html", "text/html; charset=utf-8"))
	e.GET("/ui/surveys.js", serve("surveys.js", "text/javascript; charset=utf-8"))
}
