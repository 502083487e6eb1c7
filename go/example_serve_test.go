//go:build !cachemonitor_noexporter

// The exporter's example, left out with the build tag cachemonitor_noexporter when the library is built
// without its exporter (tests/go_package.rs sets the tag then): an example cannot skip itself.

package cachemonitor_test

import (
	"fmt"
	"log"
	"net/http"

	cachemonitor "github.com/cache-monitor/cache-monitor/go"
)

// The library's own HTTP exporter serves /metrics (and the JSON reports and flamegraphs).
func ExampleLibrary_Serve() {
	lib, err := cachemonitor.Open("")
	if err != nil {
		log.Fatal(err)
	}
	if err := lib.Serve("127.0.0.1:0"); err != nil { // port 0: any free port
		log.Fatal(err)
	}
	defer lib.StopServing()
	addr, err := lib.ServeAddress()
	if err != nil {
		log.Fatal(err)
	}
	response, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	response.Body.Close()
	fmt.Println(response.Status, response.Header.Get("Content-Type"))
	// Output:
	// 200 OK text/plain; version=0.0.4; charset=utf-8
}
