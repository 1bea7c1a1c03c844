package fetchtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/pelletier/go-toml/v2"
)

// IndexLine is the index entry of a crate (a line of JSON, newline
// included), its dependencies and features read from its Cargo.toml: what a
// cargo local registry (or a full sparse index) lists for it.
func IndexLine(name, version string, manifest []byte, crate []byte) ([]byte, error) {
	var man map[string]any
	if err := toml.Unmarshal(manifest, &man); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	type dep struct {
		Name            string   `json:"name"`
		Req             string   `json:"req"`
		Features        []string `json:"features"`
		Optional        bool     `json:"optional"`
		DefaultFeatures bool     `json:"default_features"`
		Target          *string  `json:"target"`
		Kind            string   `json:"kind"`
		Package         *string  `json:"package,omitempty"`
	}
	deps := []dep{}
	addDeps := func(tables map[string]any, target *string) {
		for tk, kind := range map[string]string{"dependencies": "normal", "build-dependencies": "build", "dev-dependencies": "dev"} {
			tab, _ := tables[tk].(map[string]any)
			for dn, v := range tab {
				d := dep{Name: dn, Req: "*", Features: []string{}, DefaultFeatures: true, Target: target, Kind: kind}
				switch v := v.(type) {
				case string:
					d.Req = v
				case map[string]any:
					if s, ok := v["version"].(string); ok {
						d.Req = s
					}
					if b, ok := v["optional"].(bool); ok {
						d.Optional = b
					}
					if b, ok := v["default-features"].(bool); ok {
						d.DefaultFeatures = b
					}
					if fs, ok := v["features"].([]any); ok {
						for _, f := range fs {
							d.Features = append(d.Features, f.(string))
						}
					}
					if p, ok := v["package"].(string); ok {
						d.Package = &p
					}
				}
				deps = append(deps, d)
			}
		}
	}
	addDeps(man, nil)
	if targets, ok := man["target"].(map[string]any); ok {
		for k, v := range targets {
			k := k
			addDeps(v.(map[string]any), &k)
		}
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name < deps[j].Name })
	features := map[string][]string{}
	if f, ok := man["features"].(map[string]any); ok {
		for k, v := range f {
			features[k] = []string{}
			for _, x := range v.([]any) {
				features[k] = append(features[k], x.(string))
			}
		}
	}
	sum := sha256.Sum256(crate)
	line, err := json.Marshal(map[string]any{
		"name": name, "vers": version, "deps": deps, "cksum": hex.EncodeToString(sum[:]),
		"features": features, "yanked": false,
	})
	if err != nil {
		return nil, err
	}
	return append(line, '\n'), nil
}
