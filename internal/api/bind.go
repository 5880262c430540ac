package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/go-playground/validator/v10"

	"github.com/qgate/qgate/internal/fault"
)

// Validate is the shared validator; struct tags name fields by their JSON names in problems.
var Validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}()

// MaxJSONBody bounds operator and admin request bodies.
const MaxJSONBody = 1 << 20

// CheckJSON answers 415 unless the request says it carries JSON.
func CheckJSON(r *http.Request) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fault.New(fault.UnsupportedMedia, "header.Content-Type", "unsupported_media_type", "send the body as application/json")
	}
	// A body declared in another encoding than UTF-8 would be read as UTF-8 and stored mangled.
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fault.New(fault.UnsupportedMedia, "header.Content-Type", CodeUnsupportedCharset,
			fmt.Sprintf("charset=%s is not supported: send the body as UTF-8 with Content-Type: application/json (or application/json; charset=utf-8)", cs))
	}
	return nil
}

// CodeUnsupportedCharset is the error code of a JSON body declared in another charset than UTF-8.
const CodeUnsupportedCharset = "unsupported_charset"

// BindJSON decodes a JSON body strictly (unknown fields refused) into dst and validates it.
func BindJSON(c *gin.Context, dst any) error {
	if err := CheckJSON(c.Request); err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, MaxJSONBody+1))
	if err != nil {
		return fault.New(fault.Malformed, "", "unreadable_body", "the request body could not be read")
	}
	if len(body) > MaxJSONBody {
		return fault.New(fault.TooLarge, "", "body_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxJSONBody))
	}
	return DecodeStrict(body, dst)
}

// DecodeStrict decodes JSON into dst refusing unknown fields and trailing data, then validates.
func DecodeStrict(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err)
	}
	if dec.More() {
		return fault.New(fault.Malformed, "", "malformed_json", "unexpected data after the JSON value")
	}
	return ValidateStruct(dst)
}

func decodeProblem(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fault.New(fault.Malformed, "", "malformed_json", fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		return fault.New(fault.Invalid, te.Field, "invalid_type", fmt.Sprintf("expected %s, got JSON %s", te.Type, te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fault.New(fault.Invalid, f, "unknown_field", "this field is not part of the request")
	case errors.Is(err, io.EOF):
		return fault.New(fault.Malformed, "", "malformed_json", "the body is empty")
	default:
		return fault.New(fault.Malformed, "", "malformed_json", err.Error())
	}
}

// ValidateStruct runs the validator and turns its findings into problems with JSON paths.
func ValidateStruct(v any) error {
	err := Validate.Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fault.New(fault.Invalid, "", "invalid", err.Error())
	}
	problems := make([]fault.Problem, 0, len(verrs))
	for _, fe := range verrs {
		path := fe.Namespace()
		if _, rest, ok := strings.Cut(path, "."); ok {
			path = rest // drop the struct's own name
		}
		problems = append(problems, fault.Problem{Path: path, Code: tagCode(fe.Tag()), Message: tagMessage(fe)})
	}
	return fault.Of(fault.Invalid, problems...)
}

func tagCode(tag string) string {
	switch tag {
	case "required":
		return "required"
	case "oneof":
		return "not_allowed"
	case "max", "lte":
		return "too_large"
	case "min", "gte":
		return "too_small"
	default:
		return "invalid_" + tag
	}
}

func tagMessage(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "this field is required"
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "max", "lte":
		return "must be at most " + fe.Param()
	case "min", "gte":
		return "must be at least " + fe.Param()
	default:
		return fmt.Sprintf("fails the %q rule", fe.Tag())
	}
}
