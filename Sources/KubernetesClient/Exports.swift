// The API server's bytes and addresses (JSON, watch events, LIST pages, errors, resources)
// are decoded in KubernetesWire, a module without NIO that the fuzzer builds (issue 16);
// the client's users see them as before, through this module.
@_exported import KubernetesWire
