package access

import (
	"errors"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

const keyCtx = "qgate.key"

var errNoKey = fault.New(fault.Unauthorized, "header.Authorization", "unauthorized", "send a valid API key as 'Authorization: Bearer <key>'")

func errWrongRole(roles []Role) error {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = "'" + string(r) + "'"
	}
	return fault.New(fault.Forbidden, "header.Authorization", "forbidden", "this API key's role may not do this; it needs the "+strings.Join(names, " or ")+" role")
}

// Require authenticates the bearer key and checks that its role allows one of roles.
func Require(auth *Authenticator, roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		secret, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok {
			api.Fail(c, errNoKey)
			return
		}
		k, err := auth.Authenticate(c.Request.Context(), strings.TrimSpace(secret))
		if errors.Is(err, ErrUnauthorized) {
			api.Fail(c, errNoKey)
			return
		}
		if err != nil {
			api.Fail(c, errors.Join(fault.Unavailable, err))
			return
		}
		c.Set(keyCtx, k)
		api.SetKeyID(c, k.ID)
		if !slices.ContainsFunc(roles, k.Role.Allows) {
			api.Fail(c, errWrongRole(roles))
			return
		}
		c.Next()
	}
}

// KeyFrom returns the authenticated key of the request, if any.
func KeyFrom(c *gin.Context) (Key, bool) {
	v, ok := c.Get(keyCtx)
	if !ok {
		return Key{}, false
	}
	k, ok := v.(Key)
	return k, ok
}
