// Command baseline is the bare net/http server the load benchmark measures
// the service against: it answers every request, whatever its method or
// path, with the same small JSON body, so its throughput is the ceiling
// that HTTP handling alone allows on this machine.
//
// Usage:
//
//	baseline -addr 127.0.0.1:8081
package main

import (
	"flag"
	"log"
	"net/http"
)

// body is what every request gets: about the size of a request-count answer.
var body = []byte(`{"requests":12345}`)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()

	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, handler))
}
