package helperapi

// CheckRequest asks the helper to examine the daemon host it runs on
// (`xcheckpoint-helper check`, the request on stdin).
type CheckRequest struct {
	Protocol      int    `json:"protocol"`
	PluginVersion string `json:"plugin_version"`
	// DockerRoot is the daemon's data root, mounted at the same path in the helper.
	DockerRoot string `json:"docker_root"`
	// Capabilities are the ones config.json grants the helper ("CAP_SYS_ADMIN",
	// ...): the helper compares them with what it really holds.
	Capabilities []string `json:"capabilities"`
}

// Statuses of a CheckItem.
const (
	// StatusOK: present and working.
	StatusOK = "ok"
	// StatusWarning: checkpoints work, but something is unavailable; Detail says what.
	StatusWarning = "warning"
	// StatusMissing: checkpoints cannot be made until this is fixed.
	StatusMissing = "missing"
)

// CheckItem is one line of `docker xcheckpoint check`.
type CheckItem struct {
	// Name is what was checked ("kernel", "criu check", ...).
	Name string `json:"name"`
	// Status is StatusOK, StatusWarning or StatusMissing.
	Status string `json:"status"`
	// Value is what was found ("6.18.0", "4.2.1", "12 GB free").
	Value string `json:"value,omitempty"`
	// Detail says what the finding means for the user, and what to do.
	Detail string `json:"detail,omitempty"`
}

// CheckReport is the helper's view of the daemon host.
type CheckReport struct {
	Items []CheckItem `json:"items"`
}

// VersionInfo is the helper's answer to `xcheckpoint-helper version`.
type VersionInfo struct {
	HelperVersion string `json:"helper_version"`
	CriuVersion   string `json:"criu_version"`
	Protocol      int    `json:"protocol"`
}
