package udr

// Status says whether a SIM may attach.
type Status string

const (
	StatusActive   Status = "active"
	StatusInactive Status = "inactive"
)

// SIM is one subscriber record.
type SIM struct {
	IMSI     string    `json:"imsi" yaml:"imsi"`                         // MCC+MNC+MSIN, 15 digits at most
	MNCLen   int       `json:"mnc_length" yaml:"mnc_length"`             // 2 or 3
	SIMID    string    `json:"sim_id,omitempty" yaml:"sim_id,omitempty"` // SIM ID / ICCID
	MSISDN   string    `json:"msisdn,omitempty" yaml:"msisdn,omitempty"`
	K        [16]byte  `json:"-" yaml:"-"`
	OP       *[16]byte `json:"-" yaml:"-"` // kept only when provisioned with OP
	OPc      [16]byte  `json:"-" yaml:"-"`
	AMF      [2]byte   `json:"-" yaml:"-"`
	SQN      uint64    `json:"-" yaml:"-"`                                     // SQN_HE, 48 bits
	IMEILock string    `json:"imei_lock,omitempty" yaml:"imei_lock,omitempty"` // "", "<IMEI>" or "<IMEI>|ANONYMOUS"
	Group    string    `json:"group" yaml:"group"`
	Status   Status    `json:"status" yaml:"status"`
}

// DefaultGroup is the group of SIMs provisioned without one.
const DefaultGroup = "default"

// Group holds per-group settings, as SORACOM groups do, by namespace.
type Group struct {
	Name    string        `json:"name"`
	Endorse EndorseConfig `json:"SoracomEndorse"`
	Beam    BeamConfig    `json:"SoracomBeam"`
}

// EndorseConfig is the SoracomEndorse namespace
// (../shared/spec/soracom-endorse-beam.md 1.7).
type EndorseConfig struct {
	Enabled                bool          `json:"enabled"`
	ParametersToEndorse    EndorseParams `json:"parametersToEndorse"`
	TokenTimeoutSeconds    int           `json:"tokenTimeoutSeconds"`
	AllowOrigin            string        `json:"allowOrigin,omitempty"`
	AuthorizedRedirectURLs []string      `json:"authorizedRedirectUrls,omitempty"`
}

// EndorseParams selects the items that go into a token's soracom-endorse-claim.
type EndorseParams struct {
	SIMID             bool `json:"simId"`
	IMSI              bool `json:"imsi"`
	IMEI              bool `json:"imei"`
	MSISDN            bool `json:"msisdn"`
	RequestParameters bool `json:"requestParameters"`
}

// BeamConfig is the SoracomBeam namespace: entry points keyed by their URL,
// e.g. "http://beam.soracom.io:8888/" or "tcp://beam.soracom.io:8023".
type BeamConfig map[string]BeamEntry

// BeamEntry is one Beam entry point (../shared/spec/soracom-endorse-beam.md 2.2).
type BeamEntry struct {
	Name                string                  `json:"name,omitempty"`
	Destination         string                  `json:"destination"`
	Enabled             bool                    `json:"enabled"`
	AddSubscriberHeader bool                    `json:"addSubscriberHeader"`
	AddEquipmentHeader  bool                    `json:"addEquipmentHeader"`
	AddMsisdnHeader     bool                    `json:"addMsisdnHeader"`
	AddSimIDHeader      bool                    `json:"addSimIdHeader"`
	AddSignature        bool                    `json:"addSignature"`
	PSK                 string                  `json:"psk,omitempty"`
	CustomHeaders       map[string]CustomHeader `json:"customHeaders,omitempty"`
	SkipStatusCode      bool                    `json:"skipStatusCode,omitempty"`
}

// CustomHeader is a Beam header manipulation.
type CustomHeader struct {
	Action      string `json:"action"` // append, replace or delete
	HeaderKey   string `json:"headerKey"`
	HeaderValue string `json:"headerValue,omitempty"`
}

// DefaultEndorse is what a group gets when nothing was set: Endorse on, with
// IMSI and IMEI in a token that lives 600 s, so a new user gets a token with
// no configuration.
func DefaultEndorse() EndorseConfig {
	return EndorseConfig{
		Enabled:             true,
		ParametersToEndorse: EndorseParams{IMSI: true, IMEI: true},
		TokenTimeoutSeconds: 600,
	}
}
