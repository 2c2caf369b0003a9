// Command vcsim runs VMware's vCenter simulator (govmomi's simulator package, VPX model)
// on loopback for csi-migrate's vsphere tests. CNS (/vsanHealth) is served because
// RegisterEndpoints is set; so is PBM (/pbm, storage policies). It prints one line per fact on stdout and serves until killed:
//
//	VCSIM_URL=http://127.0.0.1:PORT/sdk
//	VCSIM_DATASTORE=<name>\t<local directory>   (one line per datastore)
//	VCSIM_READY
//
// Built in GOPATH mode against Debian's golang-github-vmware-govmomi-dev (see scripts/build-vcsim).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi"
	_ "github.com/vmware/govmomi/cns/simulator"
	_ "github.com/vmware/govmomi/pbm/simulator"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	var extraDatastores stringList
	flag.Var(&extraDatastores, "datastore", "extra local datastore to create on every host (repeatable; names may contain spaces)")
	username := flag.String("username", "", "the only user name Login accepts (default: any non-empty)")
	password := flag.String("password", "", "the only password Login accepts (with -username)")
	apiVersion := flag.String("api-version", "", "about.apiVersion to report, e.g. 7.0.0.0 (default: the VPX model's 6.5)")
	exitOnStdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin is closed (the parent test process went away)")
	flag.Parse()

	var login *url.Userinfo
	if *username != "" {
		login = url.UserPassword(*username, *password)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	if *exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(ioutil.Discard, os.Stdin)
			stop <- syscall.SIGTERM
		}()
	}

	if err := run(*listen, login, *apiVersion, extraDatastores, stop); err != nil {
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(1)
	}
}

func run(listen string, login *url.Userinfo, apiVersion string, extraDatastores []string, stop <-chan os.Signal) error {
	model := simulator.VPX()
	defer model.Remove()
	if apiVersion != "" {
		// Only the reported version changes; the simulated behaviour stays vcsim's.
		model.ServiceContent.About.ApiVersion = apiVersion
		model.ServiceContent.About.Version = apiVersion
	}
	if err := model.Create(); err != nil {
		return fmt.Errorf("create model: %w", err)
	}
	model.Service.Listen = &url.URL{Host: listen, User: login}
	model.Service.RegisterEndpoints = true

	server := model.Service.NewServer()
	defer server.Close()

	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		return fmt.Errorf("connect to simulator: %w", err)
	}
	finder := find.NewFinder(client.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return fmt.Errorf("find datacenter: %w", err)
	}
	finder.SetDatacenter(dc)

	var extraDirs []string
	for _, name := range extraDatastores {
		dir, err := ioutil.TempDir("", "csi-migrate-vcsim-ds-")
		if err != nil {
			return fmt.Errorf("datastore dir: %w", err)
		}
		extraDirs = append(extraDirs, dir)
		hosts, err := finder.HostSystemList(ctx, "*/*")
		if err != nil {
			return fmt.Errorf("list hosts: %w", err)
		}
		for _, host := range hosts {
			dss, err := host.ConfigManager().DatastoreSystem(ctx)
			if err != nil {
				return fmt.Errorf("datastore system of %s: %w", host.InventoryPath, err)
			}
			if _, err := dss.CreateLocalDatastore(ctx, name, dir); err != nil {
				return fmt.Errorf("create datastore %q on %s: %w", name, host.InventoryPath, err)
			}
		}
	}
	defer func() {
		for _, dir := range extraDirs {
			os.RemoveAll(dir)
		}
	}()

	datastores, err := finder.DatastoreList(ctx, "*")
	if err != nil {
		return fmt.Errorf("list datastores: %w", err)
	}
	var lines []string
	for _, ds := range datastores {
		var props mo.Datastore
		if err := ds.Properties(ctx, ds.Reference(), []string{"info"}, &props); err != nil {
			return fmt.Errorf("datastore info of %s: %w", ds.Name(), err)
		}
		lines = append(lines, fmt.Sprintf("VCSIM_DATASTORE=%s\t%s", ds.Name(), props.Info.GetDatastoreInfo().Url))
	}
	_ = client.Logout(ctx)

	sdk := *server.URL
	sdk.User = nil
	fmt.Printf("VCSIM_URL=%s\n", sdk.String())
	for _, line := range lines {
		fmt.Println(line)
	}
	fmt.Println("VCSIM_READY")

	<-stop
	return nil
}
