package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// errorCodes maps an HTTP status to the errorCode the simulator reports.
// Qualtrics' real codes are unconfirmed; change them here only.
var errorCodes = map[int]string{
	http.StatusBadRequest:            "QVAL_1",
	http.StatusUnauthorized:          "AUTH_1.2",
	http.StatusForbidden:             "AUTH_1.3",
	http.StatusNotFound:              "GEN_1.4",
	http.StatusMethodNotAllowed:      "GEN_1.5",
	http.StatusRequestEntityTooLarge: "QVAL_2",
	http.StatusUnsupportedMediaType:  "QVAL_3",
	http.StatusTooManyRequests:       "RL_1",
	http.StatusInternalServerError:   "GEN_1.0",
	http.StatusServiceUnavailable:    "GEN_1.1",
}

func errorCode(status int) string {
	if c, ok := errorCodes[status]; ok {
		return c
	}
	return "SIM_" + strconv.Itoa(status)
}

// httpStatusText renders Qualtrics' meta.httpStatus, e.g. "401 - Unauthorized".
func httpStatusText(status int) string {
	return fmt.Sprintf("%d - %s", status, http.StatusText(status))
}

// newRequestID returns a random UUID-shaped (version 4) identifier.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

type errorBody struct {
	ErrorMessage string `json:"errorMessage"`
	ErrorCode    string `json:"errorCode"`
}

type meta struct {
	HTTPStatus string     `json:"httpStatus"`
	RequestID  string     `json:"requestId"`
	Error      *errorBody `json:"error,omitempty"`
}

type envelope struct {
	Result any  `json:"result,omitempty"`
	Meta   meta `json:"meta"`
}

// errorEnvelope returns the JSON body of a Qualtrics error response.
func errorEnvelope(status int, requestID, msg string) []byte {
	b, _ := json.Marshal(envelope{Meta: meta{
		HTTPStatus: httpStatusText(status),
		RequestID:  requestID,
		Error:      &errorBody{ErrorMessage: msg, ErrorCode: errorCode(status)},
	}})
	return b
}

// writeJSON writes body with status and a JSON content type.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes the error envelope with a fresh request ID.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorEnvelope(status, newRequestID(), msg))
}

// writeResult writes the success envelope around result.
func writeResult(w http.ResponseWriter, result any) {
	b, err := json.Marshal(envelope{Result: result, Meta: meta{
		HTTPStatus: httpStatusText(http.StatusOK),
		RequestID:  newRequestID(),
	}})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode result: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, b)
}
