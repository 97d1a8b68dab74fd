package helperapi

import "github.com/xcheckpoint/docker-xcheckpoint/ctrinfo"

// ContainerInfo is what the helper needs to know of a container to
// checkpoint it, as the plugin learnt it from Docker's inspect: the same
// plain data package inspect fills (ctrinfo), so the contract carries no
// Docker API type and nothing needs translating.
type ContainerInfo = ctrinfo.ContainerInfo

// Mount is one mount of the container as Docker describes it.
type Mount = ctrinfo.Mount
