// A Go client as an app would write it (net/http's default client, no proxy or CA setting of its
// own), for the `tokentap run` tests: `run_client URL FORM` POSTs FORM and prints one JSON object.
package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
)

func main() {
	out := map[string]interface{}{"ok": false}
	response, err := http.Post(os.Args[1], "application/x-www-form-urlencoded", strings.NewReader(os.Args[2]))
	if err != nil {
		out["error"] = err.Error()
	} else {
		body, _ := io.ReadAll(response.Body)
		response.Body.Close()
		out["ok"] = response.StatusCode == 200
		out["status"] = response.StatusCode
		out["body"] = string(body)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}
