// Command validate checks the files in deploy/ with the libraries the real
// tools are built on, offline:
//
//	validate compose FILE [ENV_FILE]  load FILE as `docker compose config` does (compose-go:
//	                                  schema, interpolation, service references); print the
//	                                  normalized project as JSON
//	validate kustomize DIR            build DIR as `kubectl apply -k` does (kustomize's krusty);
//	                                  print the resources as a YAML stream
//	validate grafana FILE...          decode each dashboard strictly against Grafana's schema
//	                                  (grafana-foundation-sdk: unknown fields, wrong types and
//	                                  missing required fields are errors, panel options included)
//
// Exit status: 0 valid, 1 invalid (the problems on standard error), 2 usage.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "compose":
		if len(os.Args) > 4 {
			usage()
		}
		envFile := ""
		if len(os.Args) == 4 {
			envFile = os.Args[3]
		}
		err = compose(os.Args[2], envFile)
	case "kustomize":
		if len(os.Args) != 3 {
			usage()
		}
		err = kustomize(os.Args[2])
	case "grafana":
		err = grafana(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: validate compose FILE [ENV_FILE] | kustomize DIR | grafana FILE...")
	os.Exit(2)
}

// compose loads the file with its directory as the project directory. The
// environment is the given env file only (not this process's), so the result
// does not depend on who runs it.
func compose(file, envFile string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		cli.WithName("switchyard"),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(false),
	}
	if envFile != "" {
		opts = append(opts, cli.WithEnvFiles(envFile), cli.WithDotEnv)
	}
	options, err := cli.NewProjectOptions([]string{abs}, opts...)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	out, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(out, '\n'))
	return err
}

func kustomize(dir string) error {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resources, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return err
	}
	out, err := resources.AsYaml()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// nonEmpty turns an empty error list (which some of the SDK's methods return as a
// non-nil error) into nil.
func nonEmpty(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func grafana(files []string) error {
	// Panel options, field config and queries are decoded by their plugin's own schema.
	plugins.RegisterDefaultPlugins()
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		var d dashboard.Dashboard
		if err := nonEmpty(d.UnmarshalJSONStrict(raw)); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := nonEmpty(d.Validate()); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	return nil
}
