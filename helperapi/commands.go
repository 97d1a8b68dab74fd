package helperapi

import (
	"encoding/json"
	"fmt"
)

// Names of the helper's commands: its only argument (the request travels on
// stdin, see WriteRequest), and the value of the helper's command label.
const (
	CmdDump           = "dump"
	CmdList           = "list"
	CmdInspect        = "inspect"
	CmdInspectArchive = "inspect-archive"
	CmdRemove         = "remove"
	CmdRecover        = "recover"
	CmdCheck          = "check"
	CmdExport         = "export"
	CmdImport         = "import"
	CmdStage          = "stage"
	CmdStageArchive   = "stage-archive"
	CmdDeletePaths    = "delete-paths"
	// CmdVersion takes no request (any plugin may ask, whatever its
	// protocol): the plugin sends none and the helper reads none.
	CmdVersion = "version"
)

// Command is one helper command with the types of its request and of its
// result, so that both sides agree on them at compile time: the plugin calls
// a Command with a Req and gets a Res, the helper's handler for it takes the
// Req and returns the Res.
type Command[Req, Res any] struct {
	Name string
	// ReadsStdin says that the command reads an archive on stdin after the
	// request; its end is the archive's end.
	ReadsStdin bool
}

// The helper's commands.
var (
	// Dump's events: KindDumped (DumpResult) or KindFailed for each container.
	Dump           = Command[DumpRequest, BatchResult]{Name: CmdDump}
	List           = Command[ListRequest, ListResult]{Name: CmdList}
	Inspect        = Command[InspectRequest, CheckpointDetails]{Name: CmdInspect}
	InspectArchive = Command[InspectArchiveRequest, CheckpointDetails]{Name: CmdInspectArchive, ReadsStdin: true}
	Remove         = Command[RemoveRequest, RemoveResult]{Name: CmdRemove}
	Recover        = Command[RecoverRequest, RecoverResult]{Name: CmdRecover}
	Check          = Command[CheckRequest, CheckReport]{Name: CmdCheck}
	Export         = Command[ExportRequest, ArchiveResult]{Name: CmdExport}
	Import         = Command[ImportRequest, ImportResult]{Name: CmdImport, ReadsStdin: true}
	// Stage's event: KindStaged (StageResult) when it watches the verdict.
	Stage        = Command[StageRequest, StageOutcome]{Name: CmdStage}
	StageArchive = Command[StageArchiveRequest, StageArchiveResult]{Name: CmdStageArchive, ReadsStdin: true}
	DeletePaths  = Command[DeletePathsRequest, DeletePathsResult]{Name: CmdDeletePaths}
	Version      = Command[struct{}, VersionInfo]{Name: CmdVersion}
)

// CommandNames lists every command the helper answers, for its handler
// table's test and its usage line.
var CommandNames = []string{
	CmdDump, CmdList, CmdInspect, CmdInspectArchive, CmdRemove, CmdRecover, CmdCheck,
	CmdExport, CmdImport, CmdStage, CmdStageArchive, CmdDeletePaths, CmdVersion,
}

// StageOutcome is the result of a stage command: what was staged, and with
// StageRequest.WatchVerdict the supervisor's verdict.
type StageOutcome struct {
	Staged  *StageResult   `json:"staged,omitempty"`
	Verdict *RestoreStatus `json:"verdict,omitempty"`
}

// ResultEvent is the final event of a command that succeeded, its result in
// Event.Result.
func ResultEvent[Res any](res *Res) (Event, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return Event{}, fmt.Errorf("encoding the helper's result: %w", err)
	}
	return Event{Kind: KindResult, Result: b}, nil
}

// DecodeResult decodes what Event.Result holds: the command's result in a
// KindResult event, a DumpResult in a KindDumped one, a StageResult in a
// KindStaged one.
func DecodeResult[Res any](ev Event) (*Res, error) {
	if len(ev.Result) == 0 {
		return nil, fmt.Errorf("the helper's %s event carries no result", ev.Kind)
	}
	res := new(Res)
	if err := json.Unmarshal(ev.Result, res); err != nil {
		return nil, fmt.Errorf("malformed %s event from the helper: %w", ev.Kind, err)
	}
	return res, nil
}
