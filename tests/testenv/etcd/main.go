// Command etcd runs the etcd server for the test control plane.
// etcd's own main module carries replace directives, so `go install` of it fails; this
// module depends on the published go.etcd.io/etcd/server/v3 and calls its entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
