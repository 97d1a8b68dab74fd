package helperapi

// Archives without the API detour: when the plugin and the daemon share a
// filesystem (a local daemon, Docker Desktop's shared folders), the helper
// writes create --output's and export's archive straight into the plugin's
// temporary file, and import and restore --input read the archive file
// where it is, instead of every byte crossing the Docker API.
//
// The plugin decides nothing by guessing. It offers the folder of the
// archive (bind-mounted into the helper at DirectMount) together with a
// proof: a file it has just written there (0600, removed when the command
// ends) holding a random token, and the token itself in the request. The
// helper uses the folder only when it reads that token through the mount;
// otherwise (a remote daemon, a daemon in another mount namespace, a folder
// the daemon host has under the same path but not the same files) it falls
// back to the transfer through the API. Either way it says so, with one
// KindDirect event, before it writes or reads any byte of the archive: the
// plugin sends the archive on stdin, or fetches segments, only when told the
// folder is not shared.

// DirectMount is where the helper finds the folder the plugin offers.
const DirectMount = "/xcheckpoint-direct"

// DirectTokenBytes is the length of the proof's token (hex characters).
const DirectTokenBytes = 64

// DirectOffer offers the helper the plugin's folder, mounted at DirectMount.
// Names are plain file names in that folder.
type DirectOffer struct {
	// TokenFile holds Token, written by the plugin for this command only.
	TokenFile string `json:"token_file"`
	Token     string `json:"token"`
	// File is the archive: the plugin's temporary output file, which the
	// helper writes from its start (it creates nothing and renames nothing:
	// the plugin checks the bytes and renames the file), or the input
	// archive, which the helper only reads.
	File string `json:"file"`
}

// DirectVerdict is a KindDirect event's content: whether the helper uses
// the offered folder, and why not when it does not.
type DirectVerdict struct {
	Used   bool   `json:"used"`
	Reason string `json:"reason,omitempty"`
}

// DirectSegmentBytes is how often a helper writing the archive into the
// plugin's file announces the bytes written so far (KindSegment, Index
// counting up): the plugin checks them (size and CRC-32, read back from its
// own file) and shows its progress while the helper writes the rest.
const DirectSegmentBytes = 16 << 20
