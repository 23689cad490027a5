// A small JSON web server: GET / answers a greeting, GET /healthz "ok", POST /echo its body.
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"hello": "from go", "path": r.URL.Path, "host": map[bool]string{true: "yes", false: "no"}[host != ""]})
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
