// cnidriver is a cnitool-compatible test driver for CNI plugins, built on
// Debian's libcni 1.1.2 (golang-github-appc-cni-dev) so the tests exercise
// our plugin through the same library container runtimes use, not through a
// hand-rolled reimplementation of the protocol.
//
// It mirrors cnitool/cnitool.go of libcni 1.1.x (same env variables, same
// container-ID derivation) and adds what the tests need on top:
//   - CNI_CACHE_DIR: libcni cache dir, so parallel test runs do not collide.
//   - CNI_CONTAINERID: overrides the derived container ID.
//   - gc and status: libcni 1.1.2 predates CNI 1.1.0 and has neither, so
//     they are implemented here with pkg/invoke, following libcni 1.2.
//   - CNI_VALID_ATTACHMENTS: explicit JSON valid-attachment list for gc.
//
// About cniVersion 1.1.0 and libcni 1.1.2: LoadConfList accepts any version
// string, but the result parser (pkg/types/create via pkg/types/100) knows
// versions only up to 1.0.0. ADD with a 1.1.0 conflist therefore runs the
// plugin and then fails with `unsupported CNI result version "1.1.0"`,
// leaving the attachment created but not cached. To avoid such half-done
// ADDs, add/check/del refuse versions libcni cannot parse results for, while
// gc and status (which parse no results) work with 1.1.0 conflists.
package main

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

const usageText = `usage: %[1]s add|check|del|gc|status <net> <netns-path>

  add, check, del  libcni 1.1.2 AddNetworkList / CheckNetworkList / DelNetworkList;
                   the conflist cniVersion must be one libcni 1.1.2 knows
                   (0.1.0 .. 1.0.0); 1.1.0 is refused (libcni cannot parse
                   1.1.0 results).
  gc, status       CNI 1.1.0 GC / STATUS sent to every plugin of the list;
                   only done for cniVersion >= 1.1.0 (as libcni 1.2).
                   <netns-path> is unused and may be "-" or omitted.

environment:
  NETCONFPATH            config dir (default /etc/cni/net.d)
  CNI_PATH               plugin search path, colon separated
  CNI_CACHE_DIR          libcni cache dir (default /var/lib/cni)
  CNI_ARGS               K=V;K=V pairs passed as CNI_ARGS
  CAP_ARGS               JSON object of capability args (runtimeConfig)
  CNI_IFNAME             interface name (default eth0)
  CNI_CONTAINERID        container ID (default: cnitool-<sha512(netns)[:20 hex]>)
  CNI_VALID_ATTACHMENTS  gc only: JSON array of {"containerID","ifname"};
                         default: all cached attachments of <net>

A CNI error returned by a plugin is printed as its JSON error object on
stdout (exit 1); other errors go to stderr (exit 1); usage errors exit 2.
`

func usage() {
	fmt.Fprintf(os.Stderr, usageText, filepath.Base(os.Args[0]))
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 || len(os.Args) > 4 {
		usage()
	}
	cmd, netName, netns := os.Args[1], os.Args[2], "-"
	switch cmd {
	case "add", "check", "del":
		if len(os.Args) != 4 {
			usage()
		}
	case "gc", "status":
	default:
		usage()
	}
	if len(os.Args) == 4 {
		netns = os.Args[3]
	}

	netdir := os.Getenv("NETCONFPATH")
	if netdir == "" {
		netdir = "/etc/cni/net.d"
	}
	// LoadConfList also falls back to a single .conf/.json of that name.
	list, err := libcni.LoadConfList(netdir, netName)
	if err != nil {
		fail(err)
	}

	// libcni keeps CacheDir as its default; resolving it here gives gc the
	// same directory to scan that add/del write to.
	cacheDir := os.Getenv("CNI_CACHE_DIR")
	if cacheDir == "" {
		cacheDir = libcni.CacheDir
	}
	paths := filepath.SplitList(os.Getenv("CNI_PATH"))
	cninet := libcni.NewCNIConfigWithCacheDir(paths, cacheDir, &pluginExec{})
	ctx := context.Background()

	switch cmd {
	case "gc":
		fail(gc(ctx, list, paths, cacheDir))
	case "status":
		fail(status(ctx, list, paths))
	}

	if !libcniKnowsVersion(list.CNIVersion) {
		fail(fmt.Errorf("network %q has cniVersion %q, which libcni 1.1.2 cannot handle for %s "+
			"(supported: %v); use a 1.0.0 conflist for add/check/del",
			list.Name, list.CNIVersion, cmd, version.All.SupportedVersions()))
	}
	rt, err := runtimeConf(netns)
	if err != nil {
		fail(err)
	}
	switch cmd {
	case "add":
		result, err := cninet.AddNetworkList(ctx, list, rt)
		if result != nil {
			_ = result.Print()
			fmt.Println()
		}
		fail(err)
	case "check":
		fail(cninet.CheckNetworkList(ctx, list, rt))
	case "del":
		fail(cninet.DelNetworkList(ctx, list, rt))
	}
}

// libcniKnowsVersion reports whether libcni 1.1.2 can parse results of this
// version ("" means 0.1.0 per the spec).
func libcniKnowsVersion(v string) bool {
	if v == "" {
		return true
	}
	for _, known := range version.All.SupportedVersions() {
		if v == known {
			return true
		}
	}
	return false
}

// runtimeConf builds the RuntimeConf exactly as cnitool does, plus the
// CNI_CONTAINERID override.
func runtimeConf(netns string) (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{IfName: "eth0"}
	if v := os.Getenv("CAP_ARGS"); v != "" {
		if err := json.Unmarshal([]byte(v), &rt.CapabilityArgs); err != nil {
			return nil, fmt.Errorf("parsing CAP_ARGS: %w", err)
		}
	}
	if v := os.Getenv("CNI_ARGS"); v != "" {
		for _, pair := range strings.Split(v, ";") {
			kv := strings.Split(pair, "=")
			if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
				return nil, fmt.Errorf("invalid CNI_ARGS pair %q", pair)
			}
			rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
		}
	}
	// cnitool uses LookupEnv, so an explicitly empty CNI_IFNAME is kept.
	if v, ok := os.LookupEnv("CNI_IFNAME"); ok {
		rt.IfName = v
	}
	abs, err := filepath.Abs(netns)
	if err != nil {
		return nil, err
	}
	rt.NetNS = abs
	sum := sha512.Sum512([]byte(abs))
	rt.ContainerID = fmt.Sprintf("cnitool-%x", sum[:10])
	if v := os.Getenv("CNI_CONTAINERID"); v != "" {
		rt.ContainerID = v
	}
	return rt, nil
}

// attachment is the CNI 1.1.0 GC attachment object (types.GCAttachment in
// libcni 1.2).
type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// gc sends GC to every plugin in order, like libcni 1.2 GCNetworkList. Unlike
// libcni 1.2 it does not first DEL cached attachments missing from the valid
// list: the point of this driver is to test the plugin's own GC cleanup.
func gc(ctx context.Context, list *libcni.NetworkConfigList, paths []string, cacheDir string) error {
	if skip, why := skipForVersion(list, "gc"); skip {
		fmt.Fprintln(os.Stderr, why)
		return nil
	}
	var raw struct {
		DisableGC bool `json:"disableGC"`
	}
	if err := json.Unmarshal(list.Bytes, &raw); err == nil && raw.DisableGC {
		fmt.Fprintf(os.Stderr, "network %q has disableGC set; nothing to do\n", list.Name)
		return nil
	}
	valid, err := validAttachments(list.Name, cacheDir)
	if err != nil {
		return err
	}
	// Both keys carry the list: the spec's name is cni.dev/valid-attachments,
	// libcni 1.2 also sends cni.dev/attachments (containernetworking/cni#1101).
	inject := map[string]interface{}{
		"name":                      list.Name,
		"cniVersion":                list.CNIVersion,
		"cni.dev/valid-attachments": valid,
		"cni.dev/attachments":       valid,
	}
	// libcni 1.2 GCs every plugin and joins the errors; report extra
	// failures on stderr and return the first one.
	var first error
	for _, plugin := range list.Plugins {
		if err := invokeBare(ctx, "GC", plugin, inject, paths); err != nil {
			if first == nil {
				first = err
			} else {
				fmt.Fprintf(os.Stderr, "also failed: %v\n", err)
			}
		}
	}
	return first
}

// status asks every plugin in order for STATUS and stops at the first error,
// so its code (50/51 etc.) reaches the caller unchanged, as in libcni 1.2.
func status(ctx context.Context, list *libcni.NetworkConfigList, paths []string) error {
	if skip, why := skipForVersion(list, "status"); skip {
		fmt.Fprintln(os.Stderr, why)
		return nil
	}
	inject := map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion}
	for _, plugin := range list.Plugins {
		if err := invokeBare(ctx, "STATUS", plugin, inject, paths); err != nil {
			return err
		}
	}
	return nil
}

// skipForVersion mirrors libcni 1.2: GC/STATUS exist only from CNI 1.1.0 on,
// and for older lists libcni silently does nothing.
func skipForVersion(list *libcni.NetworkConfigList, cmd string) (bool, string) {
	ok, err := version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0")
	if err == nil && ok {
		return false, ""
	}
	return true, fmt.Sprintf("network %q has cniVersion %q; %s needs >= 1.1.0, nothing to do",
		list.Name, list.CNIVersion, cmd)
}

// validAttachments returns CNI_VALID_ATTACHMENTS if set, else every
// attachment libcni cached for this network, read the way libcni 1.2
// GetCachedAttachments does: parse <cacheDir>/results/* (files named
// <net>-<containerID>-<ifname>, written by cacheAdd) and trust the JSON
// content rather than the ambiguous dash-separated file name.
func validAttachments(netName, cacheDir string) ([]attachment, error) {
	out := []attachment{} // never nil: must marshal as [] and InjectConf rejects nil
	if v, ok := os.LookupEnv("CNI_VALID_ATTACHMENTS"); ok {
		dec := json.NewDecoder(strings.NewReader(v))
		// Reject unknown keys to catch typos; Go matches keys case-insensitively,
		// so "ifName" is accepted as "ifname".
		dec.DisallowUnknownFields()
		if err := dec.Decode(&out); err != nil || out == nil {
			return nil, fmt.Errorf("CNI_VALID_ATTACHMENTS must be a JSON array of {\"containerID\",\"ifname\"}: %v", err)
		}
		return out, nil
	}
	dir := filepath.Join(cacheDir, "results")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out, nil
	} else if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var c struct {
			Kind        string `json:"kind"`
			ContainerID string `json:"containerId"`
			IfName      string `json:"ifName"`
			NetworkName string `json:"networkName"`
		}
		if json.Unmarshal(data, &c) != nil || c.Kind != libcni.CNICacheV1 ||
			c.NetworkName != netName || c.ContainerID == "" || c.IfName == "" {
			continue
		}
		out = append(out, attachment{c.ContainerID, c.IfName})
	}
	return out, nil
}

// invokeBare runs one plugin with a container-less command (GC, STATUS):
// config built like libcni's buildOneConfig (InjectConf of name/cniVersion
// plus extras), environment with only CNI_COMMAND and CNI_PATH.
func invokeBare(ctx context.Context, command string, plugin *libcni.NetworkConfig,
	inject map[string]interface{}, paths []string) error {
	conf, err := libcni.InjectConf(plugin, inject)
	if err != nil {
		return fmt.Errorf("building %s config for plugin %q: %w", command, plugin.Network.Type, err)
	}
	pluginPath, err := invoke.FindInPath(plugin.Network.Type, paths)
	if err != nil {
		return err
	}
	args := &bareArgs{invoke.Args{Command: command, Path: strings.Join(paths, string(os.PathListSeparator))}}
	return invoke.ExecPluginWithoutResult(ctx, pluginPath, conf.Bytes, args, &pluginExec{})
}

// bareArgs drops the per-attachment variables that invoke.Args always sets
// (to empty strings) and that would otherwise also leak in from our own
// environment (e.g. CNI_CONTAINERID, CNI_IFNAME set for the driver).
type bareArgs struct{ invoke.Args }

func (a *bareArgs) AsEnv() []string {
	var env []string
	for _, kv := range a.Args.AsEnv() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// pluginError is a CNI error object a plugin printed on stdout. libcni's
// RawExec decodes it into types.Error only, which in 1.1.2 has no cniVersion
// field; keeping the raw bytes lets us print the plugin's object unchanged.
// The message is types.Error's, so it reads as it would with RawExec.
type pluginError struct {
	cni types.Error
	raw []byte
}

func (e *pluginError) Error() string { return e.cni.Error() }

// pluginExec is invoke.RawExec with raw-error capture. Plugin stderr is
// streamed through so plugin logs show up in test output.
type pluginExec struct{ version.PluginDecoder }

func (*pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (*pluginExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var stdout bytes.Buffer
		c := exec.CommandContext(ctx, pluginPath)
		c.Env, c.Stdin, c.Stdout, c.Stderr = environ, bytes.NewReader(stdin), &stdout, os.Stderr
		err := c.Run()
		if err == nil {
			return stdout.Bytes(), nil
		}
		// Like RawExec: a freshly written plugin binary may still be busy.
		if strings.Contains(err.Error(), "text file busy") && attempt < 5 {
			time.Sleep(time.Second)
			continue
		}
		var probe struct {
			Code *uint `json:"code"`
		}
		perr := &pluginError{raw: stdout.Bytes()}
		if json.Unmarshal(perr.raw, &probe) == nil && probe.Code != nil &&
			json.Unmarshal(perr.raw, &perr.cni) == nil {
			return nil, perr
		}
		return nil, fmt.Errorf("plugin %s failed (%v) without a CNI error on stdout: %q",
			filepath.Base(pluginPath), err, stdout.String())
	}
}

// fail exits 0 on nil; prints a plugin's CNI error object on stdout, any
// other error on stderr, and exits 1.
func fail(err error) {
	if err == nil {
		os.Exit(0)
	}
	var perr *pluginError
	if errors.As(err, &perr) {
		var pretty bytes.Buffer
		if json.Indent(&pretty, bytes.TrimSpace(perr.raw), "", "    ") != nil {
			pretty.Reset()
			pretty.Write(perr.raw)
		}
		fmt.Println(pretty.String())
	}
	// Also for CNI errors, so libcni's context ("plugin type=... failed
	// (add): ...") stays visible in test logs.
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
