//go:build !linux

package sdk

import hclog "github.com/hashicorp/go-hclog"

func armParentDeathSignal(hclog.Logger, int) {}
