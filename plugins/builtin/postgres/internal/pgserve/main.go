// Command pgserve serves the postgres connector alone, as a third-party
// executable would: the subprocess benchmark loads it through the host.
package main

import (
	"github.com/datapulse/datapulse/plugins/builtin/postgres"
	"github.com/datapulse/datapulse/plugins/sdk"
)

func main() { sdk.Serve(postgres.New()) }
