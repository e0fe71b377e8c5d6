package main

import "github.com/urfave/cli/v2"

// TODO(owner): replace with the real command.
var invokeCommand = &cli.Command{Name: "invoke"}
