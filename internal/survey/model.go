package survey

import "time"

// The synced data, as qgate keeps it (a subset of the API v3 fields, see SURVEYS.md).

// User is a Qualtrics user of the brand (GET users).
type User struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	FirstName     string `json:"firstName"`
	LastName      string `json:"lastName"`
	UserType      string `json:"userType"`
	AccountStatus string `json:"accountStatus"`
	DivisionID    string `json:"divisionId"`
}

// Survey is a survey (GET surveys, with the survey-level expiry from GET surveys/{id}).
type Survey struct {
	ID           string     `json:"id"`
	ConnectionID string     `json:"connectionId"`
	Name         string     `json:"name"`
	OwnerID      string     `json:"ownerId"`
	LastModified time.Time  `json:"lastModified"`
	CreationDate time.Time  `json:"creationDate"`
	IsActive     bool       `json:"isActive"`
	ExpiresAt    *time.Time `json:"expiresAt"` // expiration.endDate; null when open-ended
	Links        Links      `json:"links"`
}

// Stats are a distribution's counters.
type Stats struct {
	Sent       int `json:"sent"`
	Failed     int `json:"failed"`
	Started    int `json:"started"`
	Bounced    int `json:"bounced"`
	Opened     int `json:"opened"`
	Skipped    int `json:"skipped"`
	Finished   int `json:"finished"`
	Complaints int `json:"complaints"`
	Blocked    int `json:"blocked"`
}

// Distribution is an email distribution of a survey (GET distributions?surveyId=).
type Distribution struct {
	ID             string     `json:"id"`
	ConnectionID   string     `json:"connectionId"`
	SurveyID       string     `json:"surveyId"`
	OwnerID        string     `json:"ownerId"`
	OrganizationID string     `json:"organizationId"`
	MailingListID  string     `json:"mailingListId"`
	RequestType    string     `json:"requestType"`
	RequestStatus  string     `json:"requestStatus"`
	CreatedDate    time.Time  `json:"createdDate"`
	SendDate       *time.Time `json:"sendDate"`
	LinkExpiresAt  *time.Time `json:"linkExpiresAt"` // surveyLink.expirationDate
	Stats          Stats      `json:"stats"`
}

// HistoryRow is one recipient's status in a distribution (GET distributions/{id}/history).
type HistoryRow struct {
	DistributionID      string     `json:"distributionId"`
	ContactID           string     `json:"contactId"`
	Status              string     `json:"status"`
	SentAt              *time.Time `json:"sentAt"`
	OpenedAt            *time.Time `json:"openedAt"`
	ResponseID          string     `json:"responseId"`
	ResponseStartedAt   *time.Time `json:"responseStartedAt"`
	ResponseCompletedAt *time.Time `json:"responseCompletedAt"`
	SurveyLink          string     `json:"surveyLink"`
}

// Link is a recipient's personal link (GET distributions/{id}/links?surveyId=).
type Link struct {
	DistributionID string     `json:"distributionId"`
	ContactID      string     `json:"contactId"`
	Email          string     `json:"email"`
	FirstName      string     `json:"firstName"`
	LastName       string     `json:"lastName"`
	Link           string     `json:"link"`
	LinkExpiresAt  *time.Time `json:"linkExpiresAt"`
	Status         string     `json:"status"`
}

// Directory is a contact directory (GET directories).
type Directory struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Contact is a directory contact (GET directories/{id}/contacts).
type Contact struct {
	DirectoryID string `json:"directoryId"`
	ID          string `json:"id"`
	Email       string `json:"email"`
	FirstName   string `json:"firstName"`
	LastName    string `json:"lastName"`
	ExtRef      string `json:"extRef"`
}

// Snapshot is what one sync fetched, applied by the store in one transaction.
type Snapshot struct {
	// Full replaces all of the connection's data; otherwise the surveys listed are upserted,
	// and the history and links of each distribution with Detailed replaced.
	Full        bool
	Users       []User
	Directories []Directory
	Contacts    []Contact
	Surveys     []SurveyData
}

// SurveyData is one survey with what was fetched under it.
type SurveyData struct {
	Survey        Survey
	Distributions []DistributionData
}

// DistributionData is one distribution with, when Detailed, its full history and links.
type DistributionData struct {
	Distribution Distribution
	Detailed     bool
	History      []HistoryRow
	Links        []Link
}

// Links are the deep links into Qualtrics that qgate hands out.
type Links struct {
	Respond string `json:"respond,omitempty"`
	Survey  string `json:"survey,omitempty"`
	Review  string `json:"review,omitempty"`
	Results string `json:"results,omitempty"`
}

// Recipient is one recipient of one distribution, joined for notifications and pages.
type Recipient struct {
	ConnectionID        string     `json:"connectionId"`
	SurveyID            string     `json:"surveyId"`
	SurveyName          string     `json:"surveyName"`
	DistributionID      string     `json:"distributionId"`
	ContactID           string     `json:"contactId"`
	Email               string     `json:"email"`
	FirstName           string     `json:"firstName"`
	LastName            string     `json:"lastName"`
	Status              string     `json:"status"`
	SentAt              *time.Time `json:"sentAt"`
	ResponseCompletedAt *time.Time `json:"responseCompletedAt"`
	DistributionSentAt  *time.Time `json:"distributionSentAt"`
	LinkExpiresAt       *time.Time `json:"linkExpiresAt"`
	SurveyExpiresAt     *time.Time `json:"surveyExpiresAt"`
	// ExpiresAt is the earlier of the link's and the survey's expiry: the due date.
	ExpiresAt   *time.Time `json:"expiresAt"`
	RespondLink string     `json:"-"`
	BaseURL     string     `json:"-"`
	BrandID     string     `json:"-"`
	Links       Links      `json:"links"`
}

// DistributionView is a distribution with its survey's name and the deep links.
type DistributionView struct {
	Distribution
	SurveyName      string     `json:"surveyName"`
	SurveyExpiresAt *time.Time `json:"surveyExpiresAt"`
	BaseURL         string     `json:"-"`
	BrandID         string     `json:"-"`
	Links           Links      `json:"links"`
}

// Recipient statuses (distribution history).
const (
	StatusSuccess          = "Success"
	StatusOpened           = "Opened"
	StatusSurveyStarted    = "SurveyStarted"
	StatusPartiallyDone    = "SurveyPartiallyFinished"
	StatusSurveyFinished   = "SurveyFinished"
	StatusScreenedOut      = "SurveyScreenedOut"
	StatusSessionExpired   = "SessionExpired"
	StatusPending          = "Pending"
	StatusDeliveryError    = "Error"
	statusNoteEmailNotSent = "Email not sent"
)

// Statuses lists every history status Qualtrics reports.
var Statuses = []string{"Pending", "Success", "Error", "Opened", "Complaint", "Skipped", "Blocked",
	"Failure", "Unknown", "SoftBounce", "HardBounce", "SurveyStarted", "SurveyPartiallyFinished",
	"SurveyFinished", "SurveyScreenedOut", "SessionExpired"}

// Delivered reports whether the invitation reached the recipient (the email was delivered, or
// they already opened or started it).
func Delivered(status string) bool {
	switch status {
	case StatusSuccess, StatusOpened, StatusSurveyStarted, StatusPartiallyDone:
		return true
	}
	return false
}

// Done reports whether the recipient owes nothing more: finished, screened out, or their
// session expired.
func Done(status string) bool {
	switch status {
	case StatusSurveyFinished, StatusScreenedOut, StatusSessionExpired:
		return true
	}
	return false
}

// EarliestOf returns the earlier of two optional times.
func EarliestOf(a, b *time.Time) *time.Time {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case b.Before(*a):
		return b
	}
	return a
}
