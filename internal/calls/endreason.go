package calls

// EndReason says why a call or a participant ended: a SIP-class code (0 is
// a normal end), a subcode, and a message for people.
type EndReason struct {
	Code    int    `json:"code"`
	SubCode int    `json:"subCode"`
	Message string `json:"message"`
}

// The end reasons the switchboard gives.
var (
	ReasonHungUp          = EndReason{0, 0, "the agent hung up"}
	ReasonEndedForAll     = EndReason{0, 4097, "the call was ended for everyone by a participant"}
	ReasonRemoteHungUp    = EndReason{0, 5000, "the remote side hung up"}
	ReasonRemoved         = EndReason{0, 5300, "removed from the call by another participant or a supervisor"}
	ReasonCanceled        = EndReason{487, 0, "the call was canceled before it was answered"}
	ReasonDeclined        = EndReason{603, 0, "the call was declined"}
	ReasonNoAnswer        = EndReason{480, 0, "nobody answered in time"}
	ReasonNotConnected    = EndReason{480, 0, "the callee is not connected"}
	ReasonMediaLost       = EndReason{410, 0, "media or network lost past the grace period"}
	ReasonSwitchboardDied = EndReason{503, 0, "the switchboard stopped while the call was live"}
	// ReasonTransferred ends the agent's call of a completed blind or
	// consult transfer (and the agent's consult call); ReasonMerged ends the
	// call merged into another (transfer.go). Extensions of the
	// switchboard, in the Calling SDK's form: a normal end (0) told apart
	// by its subcode.
	ReasonTransferred = EndReason{0, 7015, "the call was transferred"}
	ReasonMerged      = EndReason{0, 7016, "the call was merged into another call"}
	// ReasonVoicemail ends a queue caller's call that went to voicemail
	// at the queue's max wait, when its recording ends (voicemailMaxSeconds).
	ReasonVoicemail = EndReason{0, 7017, "the caller left a voicemail"}
	// ReasonShutdown is a graceful stop (SIGTERM): the same class as a
	// crash, told apart by its subcode.
	ReasonShutdown = EndReason{503, 1, "the switchboard was shut down while the call was live"}
)
