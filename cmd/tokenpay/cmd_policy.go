package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Print or check the policy"}
	cmd.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective policy as YAML",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := a.policy()
			if err != nil {
				return err
			}
			out, err := p.YAML()
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(out)
			return err
		},
	}, &cobra.Command{
		Use:   "check FILE",
		Short: "Report every error in a policy file at once; exit 1 if there is any",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return ledger.Errorf(ledger.Invalid, "cannot open %s: %v", args[0], pathProblem(err))
			}
			defer f.Close()
			_, err = policy.Parse(f)
			var perrs *policy.Errors
			if errors.As(err, &perrs) {
				for _, p := range perrs.Problems {
					if p.Line > 0 {
						fmt.Fprintf(a.stdout, "%s:%d: %s: %s\n", args[0], p.Line, p.Path, p.Message)
					} else {
						fmt.Fprintf(a.stdout, "%s: %s: %s\n", args[0], p.Path, p.Message)
					}
				}
				fmt.Fprintf(a.stderr, "tokenpay: %s has %s\n", args[0], count(len(perrs.Problems), "problem", "problems"))
				return exitError{1}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s is a valid policy.\n", args[0])
			return nil
		},
	})
	return cmd
}
