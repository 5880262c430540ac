package profile

import "errors"

// Error codes of FieldError.Code. docs/profile-validation.md describes each one.
const (
	CodeInvalidJSON                 = "invalid_json"
	CodeNotAnObject                 = "not_an_object"
	CodeDuplicateKey                = "duplicate_key"
	CodeMissingIdentityMap          = "missing_identity_map"
	CodeInvalidIdentityMap          = "invalid_identity_map"
	CodeEmptyIdentityID             = "empty_identity_id"
	CodeHashedEmail                 = "hashed_email"
	CodeInvalidEmail                = "invalid_email"
	CodeNoSupportedIdentity         = "no_supported_identity"
	CodeMissingSegmentMembership    = "missing_segment_membership"
	CodeInvalidSegmentMembership    = "invalid_segment_membership"
	CodeInvalidSegmentStatus        = "invalid_segment_status"
	CodeInvalidQualificationTime    = "invalid_qualification_time"
	CodeUnsupportedSegmentNamespace = "unsupported_segment_namespace"
	CodeInvalidAttributeName        = "invalid_attribute_name"
	CodeTooDeep                     = "too_deep"
	CodeStringTooLong               = "string_too_long"
	CodeTooManyAttributes           = "too_many_attributes"
	CodeTooManyIdentities           = "too_many_identities"
	CodeTooManyAudiences            = "too_many_audiences"
)

// Codes lists every error code Parse can report.
var Codes = []string{
	CodeInvalidJSON, CodeNotAnObject, CodeDuplicateKey,
	CodeMissingIdentityMap, CodeInvalidIdentityMap, CodeEmptyIdentityID,
	CodeHashedEmail, CodeInvalidEmail, CodeNoSupportedIdentity,
	CodeMissingSegmentMembership, CodeInvalidSegmentMembership, CodeInvalidSegmentStatus,
	CodeInvalidQualificationTime, CodeUnsupportedSegmentNamespace, CodeInvalidAttributeName,
	CodeTooDeep, CodeStringTooLong, CodeTooManyAttributes, CodeTooManyIdentities, CodeTooManyAudiences,
}

// MaxErrors caps the number of FieldErrors Parse returns for one profile.
const MaxErrors = 50

// FieldError is one validation failure. Path uses dots for objects and [i] for arrays,
// relative to the profile object, e.g. "identityMap.Email[0].id", "person.name.First_name".
type FieldError struct {
	Path    string `json:"path"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Code + ": " + e.Message
	}
	return e.Path + ": " + e.Code + ": " + e.Message
}

// Errors of SplitBody. They are wrapped with detail; test with errors.Is.
var (
	ErrMalformed = errors.New("malformed request body")
	ErrTooMany   = errors.New("too many profiles in request body")
	ErrEmpty     = errors.New("no profile in request body")
)
