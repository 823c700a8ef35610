package main

import (
	"reflect"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the configuration (simgate.yaml)",
	}
	var defaults bool
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the effective configuration as documented YAML",
		Long: `Print the configuration in effect (defaults, then simgate.yaml or --config, then
flags) as YAML with each key documented. With --defaults, print the defaults
only: a starting point for simgate.yaml.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.cfg
			if defaults {
				c = DefaultConfig()
			}
			b, err := documentedYAML(&c)
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(b)
			return err
		},
	}
	show.Flags().BoolVar(&defaults, "defaults", false, "print the built-in defaults, ignoring the file and flags")
	cmd.AddCommand(show)
	return cmd
}

// documentedYAML renders c with each key's doc tag as a comment.
func documentedYAML(c *Config) ([]byte, error) {
	n := structNode(reflect.ValueOf(c).Elem())
	n.HeadComment = "simgate.yaml: every key can also be given as a flag named by its path (e.g. --log.level)."
	return yaml.Marshal(n)
}

func structNode(v reflect.Value) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: name, HeadComment: f.Tag.Get("doc")}
		fv := v.Field(i)
		var val *yaml.Node
		switch {
		case isLeaf(fv) && fv.Kind() == reflect.Slice:
			val = &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for j := 0; j < fv.Len(); j++ {
				val.Content = append(val.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: formatLeaf(fv.Index(j))})
			}
		case isLeaf(fv):
			val = &yaml.Node{Kind: yaml.ScalarNode, Value: formatLeaf(fv)}
			if fv.Kind() == reflect.String {
				val.Style = yaml.DoubleQuotedStyle
			}
		case fv.Kind() == reflect.Struct:
			val = structNode(fv)
		default:
			continue
		}
		m.Content = append(m.Content, k, val)
	}
	return m
}
