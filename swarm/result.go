package swarm

import (
	"io"

	"github.com/darktime/darktime/swarm/resultfile"
)

// The result file, darktime.swarm/v1 (package resultfile: a leaf, so that
// its readers — darktime report, scenarios — do not link the engine).

// Schema versions the result file format (RESULTS.md).
const Schema = resultfile.Schema

// ErrResult marks a result file that cannot be used: truncated, corrupt,
// of another schema, or results that do not belong together.
var ErrResult = resultfile.ErrResult

// The result and what it holds.
type (
	// Result is what one run (or one part of it) measured.
	Result = resultfile.Result
	// PartInfo names one part of a run.
	PartInfo = resultfile.PartInfo
	// Part is one slice of a run.
	Part = resultfile.Part
	// ConfigEcho is the Config a result was measured with, defaults filled in.
	ConfigEcho = resultfile.ConfigEcho
	// PhaseEcho is one Config.Phases entry as run.
	PhaseEcho = resultfile.PhaseEcho
	// SlowdownEcho is one Config.Slowdowns entry.
	SlowdownEcho = resultfile.SlowdownEcho
	// Totals counts client lifecycle events.
	Totals = resultfile.Totals
	// PublishInfo counts publishes.
	PublishInfo = resultfile.PublishInfo
	// Percentiles summarises a histogram in milliseconds.
	Percentiles = resultfile.Percentiles
	// Second is one second of the run.
	Second = resultfile.Second
	// Resources is what one part cost on the client side.
	Resources = resultfile.Resources
	// EventCounts counts received events.
	EventCounts = resultfile.EventCounts
	// Attribution explains the ledger: see RESULTS.md "attribution".
	Attribution = resultfile.Attribution
	// Causes are one channel's lost and extra deliveries by cause.
	Causes = resultfile.Causes
	// ResumeCounts says whether the target resumes streams.
	ResumeCounts = resultfile.ResumeCounts
	// HangupCounts counts connections the swarm closed itself.
	HangupCounts = resultfile.HangupCounts
	// ExtractFailure reports that none of the first events a run received
	// could be read with the profile's extract markers.
	ExtractFailure = resultfile.ExtractFailure
	// Profile describes how to talk to one kind of SSE server.
	Profile = resultfile.Profile
	// PublishTemplate is an HTTP request with placeholders.
	PublishTemplate = resultfile.PublishTemplate
	// Extract holds the literal text that precedes each field in the data
	// of a received event.
	Extract = resultfile.Extract
	// TokenEcho is Config.Token in a result, without the key.
	TokenEcho = resultfile.TokenEcho
)

// Histogram names in results.
const (
	HistDelivery   = resultfile.HistDelivery
	HistConnect    = resultfile.HistConnect
	HistFirstEvent = resultfile.HistFirstEvent
	HistPublish    = resultfile.HistPublish
)

// ReadResult reads a result file and checks it: the schema, the checksum,
// every histogram and the ledger's totals. A truncated or edited file is
// an error wrapping ErrResult.
func ReadResult(rd io.Reader) (*Result, error) { return resultfile.ReadResult(rd) }

// Merge adds results of the parts of one run (resultfile.Merge).
func Merge(results ...*Result) (*Result, error) { return resultfile.Merge(results...) }

var (
	encodeHistogram = resultfile.EncodeHistogram
	decodeHistogram = resultfile.DecodeHistogram
	percentiles     = resultfile.Summarise
)
