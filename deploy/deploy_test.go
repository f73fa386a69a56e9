package deploy

import (
	"bufio"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/hostportal/idp/config"
	"github.com/hostportal/idp/storage/pending/redisstore"
)

// The files under test, relative to deploy/ (where go test runs).
const (
	dockerfilePath    = "Dockerfile"
	dockerignorePath  = "Dockerfile.dockerignore"
	composePath       = "compose.yaml"
	composeEnvPath    = ".env.example"
	kubernetesDir     = "kubernetes"
	kustomizationPath = "kubernetes/kustomization.yaml"
	unitPath          = "systemd/idp.service"
	sysusersPath      = "systemd/idp.sysusers.conf"
	systemdConfigPath = "systemd/idp.yaml"
	systemdEnvPath    = "systemd/idp.env.example"
)

// testSecrets stand in for what an operator fills in: the examples leave
// the secrets empty on purpose, so that nothing starts with a published
// value.
var testSecrets = map[string]string{
	"IDP_SECRET_KEY":            base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")),
	"POSTGRES_PASSWORD":         "test-password",
	"IDP_DATABASE_URL":          "postgres://idp:test-password@db.internal:5432/idp",
	"IDP_SMS_TWILIO_AUTH_TOKEN": "testAuthToken0123456789",
	"IDP_EMAIL_SMTP_PASSWORD":   "test-smtp-password",
}

// The secrets every multi-instance deployment passes as environment
// variables (never in a configuration file or manifest in clear).
var deploymentSecrets = []string{"IDP_SECRET_KEY", "IDP_DATABASE_URL", "IDP_SMS_TWILIO_AUTH_TOKEN", "IDP_EMAIL_SMTP_PASSWORD"}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deployFiles lists every file under deploy/ except the Go sources.
func deployFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// decodeYAML decodes every document of a YAML stream into a node.
func decodeYAML(src string) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(src))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if n.Kind != 0 && !(n.Kind == yaml.DocumentNode && len(n.Content) == 0) {
			docs = append(docs, &n)
		}
	}
}

// envNames maps every environment variable the provider reads to its key
// ("" for IDP_CONFIG, which names the file).
func envNames() map[string]string {
	names := map[string]string{"IDP_CONFIG": ""}
	for _, k := range config.Keys() {
		names[config.EnvName(k)] = k
	}
	return names
}

// loadConfig is config.Load with env as the whole environment.
func loadConfig(file string, env map[string]string) (*config.Config, error) {
	var environ []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		environ = append(environ, k+"="+env[k])
	}
	return config.Load(config.Source{File: file, Environ: environ})
}

// listenPort is the port of a listen address such as 0.0.0.0:8080.
func listenPort(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen %q: port is not a number", listen)
	}
	return n
}

func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "y", "true", "t", "on":
		return true, true
	case "0", "no", "n", "false", "f", "off":
		return false, true
	}
	return false, false
}

// TestYAMLFilesParse: every YAML file under deploy/ is well formed, every
// document of it.
func TestYAMLFilesParse(t *testing.T) {
	n := 0
	for _, f := range deployFiles(t) {
		if ext := filepath.Ext(f); ext != ".yaml" && ext != ".yml" {
			continue
		}
		n++
		docs, err := decodeYAML(readFile(t, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
		} else if len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
	}
	if n == 0 {
		t.Fatal("no YAML files found under deploy/")
	}
}

var envNameRE = regexp.MustCompile(`\bIDP_[A-Z0-9_]*[A-Z0-9]\b`)

// TestEnvNamesAreConfigKeys: every IDP_* name written anywhere under
// deploy/ (manifests, examples, comments, the README) is a variable the
// provider reads, so renaming a key breaks this test instead of a
// deployment.
func TestEnvNamesAreConfigKeys(t *testing.T) {
	known := envNames()
	seen := 0
	for _, f := range deployFiles(t) {
		for i, line := range strings.Split(readFile(t, f), "\n") {
			for _, name := range envNameRE.FindAllString(line, -1) {
				seen++
				if _, ok := known[name]; !ok {
					t.Errorf("%s:%d: %s is not a configuration variable (config.Keys() with config.EnvName, or IDP_CONFIG)", f, i+1, name)
				}
			}
		}
	}
	if seen == 0 {
		t.Fatal("no IDP_* names found under deploy/: is the test looking in the right place?")
	}
}

var (
	redisURLRE    = regexp.MustCompile(`\brediss?(?:\+sentinel|\+cluster)?://[^\s"'` + "`" + `)<>]+`)
	postgresURLRE = regexp.MustCompile(`\bpostgres(?:ql)?://[^\s"'` + "`" + `)<>]+`)
)

// TestURLsParse: every Redis and PostgreSQL URL written under deploy/ (the
// Sentinel and Cluster examples too) is accepted by the configuration and
// by the client that uses it.
func TestURLsParse(t *testing.T) {
	for _, f := range deployFiles(t) {
		src := readFile(t, f)
		for _, u := range redisURLRE.FindAllString(src, -1) {
			u = strings.TrimRight(u, ".,;:")
			if strings.Contains(u, "${") || strings.Contains(u, "...") {
				continue
			}
			if _, err := loadConfig("", map[string]string{"IDP_REDIS_URL": u}); err != nil {
				t.Errorf("%s: redis URL %s: %v", f, u, err)
			}
			c, err := redisstore.NewClient(u)
			if err != nil {
				t.Errorf("%s: redis URL %s: %v", f, u, err)
				continue
			}
			c.Close()
		}
		for _, u := range postgresURLRE.FindAllString(src, -1) {
			u = strings.TrimRight(u, ".,;:")
			if strings.Contains(u, "${") || strings.Contains(u, "...") {
				continue
			}
			if _, err := loadConfig("", map[string]string{"IDP_DATABASE_URL": u}); err != nil {
				t.Errorf("%s: database URL %s: %v", f, u, err)
			}
			if _, err := pgx.ParseConfig(u); err != nil {
				t.Errorf("%s: database URL %s: %v", f, u, err)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

type dockerInstruction struct {
	line int
	cmd  string // upper case
	args string
}

type dockerStage struct {
	base, name string
	instrs     []dockerInstruction
}

func (s dockerStage) all(cmd string) []dockerInstruction {
	var out []dockerInstruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// env is the stage's ENV (and ARG defaults when args is set).
func (s dockerStage) env(t *testing.T, withArgs bool) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.instrs {
		switch {
		case in.cmd == "ENV":
			words := shellWords(in.args)
			if len(words) > 0 && !strings.Contains(words[0], "=") {
				env[words[0]] = strings.Join(words[1:], " ") // ENV KEY value
				continue
			}
			for _, w := range words {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					t.Fatalf("Dockerfile:%d: ENV %q is not KEY=VALUE", in.line, w)
				}
				env[k] = v
			}
		case in.cmd == "ARG" && withArgs:
			k, v, _ := strings.Cut(strings.TrimSpace(in.args), "=")
			env[k] = v
		}
	}
	return env
}

func parseDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	var (
		stages  []dockerStage
		pending strings.Builder
		start   int
	)
	lines := strings.Split(readFile(t, dockerfilePath), "\n")
	for i, raw := range lines {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		full := pending.String()
		pending.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		in := dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			st := dockerStage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if pending.Len() > 0 {
		t.Fatal("Dockerfile ends in a line continuation")
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stage(s), want a build stage and a runtime stage", len(stages))
	}
	return stages
}

// shellWords splits a command line the way sh would for the simple forms a
// Dockerfile uses: blanks, single and double quotes, backslash escapes.
func shellWords(s string) []string {
	var (
		words []string
		cur   strings.Builder
		in    bool // a word has started
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// goBuild is the `go build` command of the build stage, as words, with
// ${VAR} replaced from the stage's ENV and ARG defaults.
type goBuild struct {
	line  int
	words []string
	out   string
	env   map[string]string
}

func findGoBuild(t *testing.T, st dockerStage) goBuild {
	t.Helper()
	env := st.env(t, true)
	for _, in := range st.all("RUN") {
		i := strings.Index(in.args, "go build")
		if i < 0 {
			continue
		}
		// Inline assignments before the command (RUN CGO_ENABLED=0 go build).
		for _, w := range shellWords(in.args[:i]) {
			if k, v, ok := strings.Cut(w, "="); ok && !strings.HasPrefix(w, "-") {
				env[k] = v
			}
		}
		seg := in.args[i:]
		for _, sep := range []string{"&&", ";", "||"} {
			if j := strings.Index(seg, sep); j >= 0 {
				seg = seg[:j]
			}
		}
		seg = os.Expand(seg, func(k string) string { return env[k] })
		b := goBuild{line: in.line, words: shellWords(seg), env: env}
		for j, w := range b.words {
			if w == "-o" && j+1 < len(b.words) {
				b.out = b.words[j+1]
			}
		}
		return b
	}
	t.Fatalf("Dockerfile: the %s stage has no RUN ... go build", st.name)
	return goBuild{}
}

func (b goBuild) flagValue(name string) (string, bool) {
	for j, w := range b.words {
		if w == name && j+1 < len(b.words) {
			return b.words[j+1], true
		}
		if v, ok := strings.CutPrefix(w, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// imageEnv is the environment the runtime image sets.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	stages := parseDockerfile(t)
	return stages[len(stages)-1].env(t, false)
}

// imageVolumes are the VOLUME paths of the runtime image.
func imageVolumes(t *testing.T) []string {
	t.Helper()
	stages := parseDockerfile(t)
	var vols []string
	for _, in := range stages[len(stages)-1].all("VOLUME") {
		var list []string
		if err := json.Unmarshal([]byte(in.args), &list); err != nil {
			list = strings.Fields(in.args)
		}
		vols = append(vols, list...)
	}
	return vols
}

// TestDockerfile: a static, stripped build of ./cmd/idp on golang:1.26, a
// distroless (or scratch) runtime running `/idp serve` as uid 65532,
// exposing the port of IDP_LISTEN, with its data on the volume.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]

	if !strings.HasPrefix(build.base, "golang:1.26") {
		t.Errorf("build stage FROM %s, want golang:1.26", build.base)
	}
	if build.name == "" {
		t.Fatal("the build stage needs a name (FROM golang:1.26 AS build) for COPY --from")
	}
	gb := findGoBuild(t, build)
	if gb.env["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile:%d: go build runs with CGO_ENABLED=%q, want 0 (a static binary for distroless/static)", gb.line, gb.env["CGO_ENABLED"])
	}
	if !slices.Contains(gb.words, "-trimpath") {
		t.Errorf("Dockerfile:%d: go build without -trimpath", gb.line)
	}
	if ld, _ := gb.flagValue("-ldflags"); !slices.Contains(strings.Fields(ld), "-s") || !slices.Contains(strings.Fields(ld), "-w") {
		t.Errorf("Dockerfile:%d: -ldflags %q, want -s -w", gb.line, ld)
	}
	if !slices.Contains(gb.words, "./cmd/idp") {
		t.Errorf("Dockerfile:%d: go build does not build ./cmd/idp: %q", gb.line, gb.words)
	}
	if gb.out == "" {
		t.Fatalf("Dockerfile:%d: go build has no -o", gb.line)
	}

	scratch := final.base == "scratch"
	if !scratch && !regexp.MustCompile(`^gcr\.io/distroless/static(-debian\d+)?:(latest-)?nonroot$`).MatchString(final.base) {
		t.Errorf("runtime stage FROM %s, want gcr.io/distroless/static-debian12:nonroot or scratch", final.base)
	}
	copied := map[string]string{} // destination -> source, from the build stage
	for _, in := range final.all("COPY") {
		words := shellWords(in.args)
		var from string
		var rest []string
		for _, w := range words {
			if v, ok := strings.CutPrefix(w, "--from="); ok {
				from = v
			} else if !strings.HasPrefix(w, "--") {
				rest = append(rest, w)
			}
		}
		if from == build.name && len(rest) >= 2 {
			for _, src := range rest[:len(rest)-1] {
				copied[rest[len(rest)-1]] = src
			}
		}
	}
	if scratch {
		for _, need := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/passwd"} {
			if _, ok := copied[need]; !ok {
				t.Errorf("a scratch image needs %s copied in (CA certificates for Twilio and SMTP, a passwd entry for the user)", need)
			}
		}
	}

	var entry []string
	if ins := final.all("ENTRYPOINT"); len(ins) == 0 {
		t.Fatal("runtime stage has no ENTRYPOINT")
	} else if err := json.Unmarshal([]byte(ins[len(ins)-1].args), &entry); err != nil {
		t.Fatalf("Dockerfile:%d: ENTRYPOINT must be the exec form (no shell in the image): %v", ins[len(ins)-1].line, err)
	}
	if !slices.Equal(entry, []string{"/idp", "serve"}) {
		t.Errorf("ENTRYPOINT %q, want [\"/idp\", \"serve\"]", entry)
	}
	if src, ok := copied["/idp"]; !ok || src != gb.out {
		t.Errorf("runtime stage copies %q to /idp from the build stage, want the go build output %q", src, gb.out)
	}

	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage has no USER: it would run as root")
	}
	user, _, _ := strings.Cut(strings.TrimSpace(users[len(users)-1].args), ":")
	if user != "65532" && user != "nonroot" {
		t.Errorf("USER %s, want 65532 (distroless's nonroot)", user)
	}
	for _, in := range final.all("RUN") {
		t.Errorf("Dockerfile:%d: RUN in the runtime stage, which has no shell", in.line)
	}

	env := final.env(t, false)
	listen, ok := env["IDP_LISTEN"]
	if !ok {
		t.Fatal("runtime stage does not set ENV IDP_LISTEN (the default 127.0.0.1:8080 is unreachable from outside a container)")
	}
	if host, _, _ := net.SplitHostPort(listen); host != "0.0.0.0" && host != "" && host != "::" {
		t.Errorf("IDP_LISTEN=%s listens on %s only; want 0.0.0.0", listen, host)
	}
	port := listenPort(t, listen)
	var exposed []int
	for _, in := range final.all("EXPOSE") {
		for _, f := range strings.Fields(in.args) {
			n, err := strconv.Atoi(strings.TrimSuffix(f, "/tcp"))
			if err != nil {
				t.Errorf("Dockerfile:%d: EXPOSE %s is not a TCP port", in.line, f)
			}
			exposed = append(exposed, n)
		}
	}
	if !slices.Contains(exposed, port) {
		t.Errorf("EXPOSE %v does not include %d, the port of IDP_LISTEN=%s", exposed, port, listen)
	}

	// The image's configuration alone is valid, and what it writes (the
	// default SQLite file and the generated secret.key, both relative to
	// the working directory) lands on the volume.
	cfg, err := loadConfig("", env)
	if err != nil {
		t.Fatalf("the image's ENV is not a valid configuration: %v", err)
	}
	vols := imageVolumes(t)
	if !slices.Contains(vols, "/var/lib/idp") {
		t.Errorf("VOLUME %q, want /var/lib/idp (the data directory)", vols)
	}
	workdir := "/"
	if ins := final.all("WORKDIR"); len(ins) > 0 {
		workdir = strings.TrimSpace(ins[len(ins)-1].args)
	}
	dbPath, _ := strings.CutPrefix(cfg.Database.URL, "sqlite://")
	for what, p := range map[string]string{"data_dir": cfg.DataDir, "database.url": dbPath} {
		if !path.IsAbs(p) {
			p = path.Join(workdir, p)
		}
		if !slices.ContainsFunc(vols, func(v string) bool { return p == v || strings.HasPrefix(p, v+"/") }) {
			t.Errorf("%s resolves to %s in the image, which is not on a VOLUME %q (the root file system is read-only)", what, p, vols)
		}
	}

	for _, in := range final.all("HEALTHCHECK") {
		rest := strings.TrimSpace(in.args)
		if rest == "NONE" {
			continue
		}
		if i := strings.Index(rest, "CMD"); i >= 0 {
			rest = strings.TrimSpace(rest[i+len("CMD"):])
		}
		if !strings.HasPrefix(rest, "[") || strings.Contains(rest, "CMD-SHELL") {
			t.Errorf("Dockerfile:%d: HEALTHCHECK needs a shell, which the image does not have", in.line)
		}
	}

	ignore := strings.Fields(readFile(t, dockerignorePath))
	for _, want := range []string{".git", "deploy/.env"} {
		if !slices.Contains(ignore, want) {
			t.Errorf("%s does not exclude %s from the build context", dockerignorePath, want)
		}
	}

	t.Run("the go build line builds a static binary", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds cmd/idp; skipped with -short")
		}
		bin := filepath.Join(t.TempDir(), "idp")
		words := slices.Clone(gb.words)
		for j := range words {
			if j > 0 && words[j-1] == "-o" {
				words[j] = bin
			}
		}
		cmd := exec.Command(words[0], words[1:]...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+runtime.GOARCH)
		for k, v := range gb.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, out)
		}
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary is dynamically linked: it does not run on distroless/static or scratch")
			}
		}
		if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
			t.Error("the binary has a symbol table: -ldflags -s did not take")
		}
		if runtime.GOOS != "linux" {
			return
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "idp ") {
			t.Errorf("%s version: %v\n%s", bin, err, out)
		}
	})
}

// ---------------------------------------------------------------------------
// compose.yaml and nginx.conf

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
		IPAM     struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Restart     string            `yaml:"restart"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     yaml.Node         `yaml:"env_file"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Tmpfs       []string          `yaml:"tmpfs"`
	ReadOnly    bool              `yaml:"read_only"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	Networks yaml.Node `yaml:"networks"`
}

// dependsOn maps each dependency to its condition.
func (s composeService) dependsOn() map[string]string {
	deps := map[string]string{}
	switch s.DependsOn.Kind {
	case yaml.SequenceNode:
		for _, n := range s.DependsOn.Content {
			deps[n.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(s.DependsOn.Content); i += 2 {
			var v struct {
				Condition string `yaml:"condition"`
			}
			s.DependsOn.Content[i+1].Decode(&v)
			deps[s.DependsOn.Content[i].Value] = orDefault(v.Condition, "service_started")
		}
	}
	return deps
}

// networks maps each network the service joins to its fixed IPv4 address
// ("" for none).
func (s composeService) networks() map[string]string {
	nets := map[string]string{}
	switch s.Networks.Kind {
	case yaml.SequenceNode:
		for _, n := range s.Networks.Content {
			nets[n.Value] = ""
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(s.Networks.Content); i += 2 {
			var v struct {
				IPv4 string `yaml:"ipv4_address"`
			}
			s.Networks.Content[i+1].Decode(&v)
			nets[s.Networks.Content[i].Value] = v.IPv4
		}
	case 0:
		nets["default"] = ""
	}
	return nets
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// parseEnvFile reads KEY=VALUE lines (compose's .env and systemd's
// EnvironmentFile, in the simple form the examples use). With commented,
// it also returns the assignments that are commented out (#KEY=VALUE).
func parseEnvFile(t *testing.T, name string) (active, commented map[string]string) {
	t.Helper()
	active, commented = map[string]string{}, map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(readFile(t, name)))
	assign := regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		target, isComment := active, false
		if rest, ok := strings.CutPrefix(line, "#"); ok {
			line, target, isComment = strings.TrimSpace(rest), commented, true
		}
		if m := assign.FindStringSubmatch(line); m != nil {
			target[m[1]] = strings.Trim(m[2], `"'`)
		} else if !isComment && line != "" {
			t.Errorf("%s:%d: not KEY=VALUE: %q", name, n, line)
		}
	}
	return active, commented
}

var interpolationRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate applies compose's ${VAR}, ${VAR:-default}, ${VAR-default},
// ${VAR:?error} and ${VAR?error} with vars as the .env file.
func interpolate(s string, vars map[string]string) (string, error) {
	const dollar = "\x00"
	s = strings.ReplaceAll(s, "$$", dollar)
	var errs []error
	s = interpolationRE.ReplaceAllStringFunc(s, func(m string) string {
		g := interpolationRE.FindStringSubmatch(m)
		v, set := vars[g[1]]
		empty := !set || v == ""
		switch g[2] {
		case ":-":
			if empty {
				return g[3]
			}
		case "-":
			if !set {
				return g[3]
			}
		case ":?":
			if empty {
				errs = append(errs, fmt.Errorf("%s: %s", g[1], g[3]))
			}
		case "?":
			if !set {
				errs = append(errs, fmt.Errorf("%s: %s", g[1], g[3]))
			}
		}
		return v
	})
	if strings.Contains(s, "$") {
		errs = append(errs, fmt.Errorf("unsupported interpolation in %q", s))
	}
	return strings.ReplaceAll(s, dollar, "$"), errors.Join(errs...)
}

// nginx configuration: directives with their arguments and blocks.
type nginxDirective struct {
	name  string
	args  []string
	block []nginxDirective
}

func (d nginxDirective) all(name string) []nginxDirective {
	var out []nginxDirective
	for _, c := range d.block {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func tokenizeNginx(src string) ([]string, error) {
	var toks []string
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
		case r == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == '{' || r == '}' || r == ';':
			toks = append(toks, string(r))
		case r == '"' || r == '\'':
			var b strings.Builder
			for i++; i < len(rs) && rs[i] != r; i++ {
				if rs[i] == '\\' && i+1 < len(rs) {
					i++
				}
				b.WriteRune(rs[i])
			}
			if i >= len(rs) {
				return nil, errors.New("unterminated quote")
			}
			toks = append(toks, b.String())
		default:
			j := i
			for j < len(rs) && !strings.ContainsRune(" \t\r\n{};#", rs[j]) {
				j++
			}
			toks = append(toks, string(rs[i:j]))
			i = j - 1
		}
	}
	return toks, nil
}

func parseNginx(src string) (nginxDirective, error) {
	toks, err := tokenizeNginx(src)
	if err != nil {
		return nginxDirective{}, err
	}
	var parse func(depth int) ([]nginxDirective, error)
	parse = func(depth int) ([]nginxDirective, error) {
		var ds []nginxDirective
		var words []string
		for len(toks) > 0 {
			tok := toks[0]
			toks = toks[1:]
			switch tok {
			case ";":
				if len(words) == 0 {
					return nil, errors.New("empty directive")
				}
				ds = append(ds, nginxDirective{name: words[0], args: words[1:]})
				words = nil
			case "{":
				if len(words) == 0 {
					return nil, errors.New("block without a name")
				}
				block, err := parse(depth + 1)
				if err != nil {
					return nil, err
				}
				ds = append(ds, nginxDirective{name: words[0], args: words[1:], block: block})
				words = nil
			case "}":
				if depth == 0 || len(words) > 0 {
					return nil, errors.New("unbalanced }")
				}
				return ds, nil
			default:
				words = append(words, tok)
			}
		}
		if depth > 0 || len(words) > 0 {
			return nil, errors.New("unexpected end of file (missing } or ;)")
		}
		return ds, nil
	}
	block, err := parse(0)
	return nginxDirective{block: block}, err
}

func hostPort(t *testing.T, s string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: port is not a number", s)
	}
	return h, n
}

// TestCompose: two provider instances built from the Dockerfile, with the
// same settings (one secret key from .env, one PostgreSQL, one Redis),
// behind an nginx that round-robins over both on the port they listen on,
// and is the only proxy they trust.
func TestCompose(t *testing.T) {
	raw := readFile(t, composePath)
	var cf composeFile
	if err := yaml.Unmarshal([]byte(raw), &cf); err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	envExample, _ := parseEnvFile(t, composeEnvPath)
	for _, m := range interpolationRE.FindAllStringSubmatch(raw, -1) {
		if _, ok := envExample[m[1]]; !ok {
			t.Errorf("%s uses ${%s}, which %s does not list", composePath, m[1], composeEnvPath)
		}
	}
	vars := maps.Clone(envExample)
	for k, v := range vars {
		if v == "" && testSecrets[k] != "" {
			vars[k] = testSecrets[k]
		}
	}
	resolve := func(where, s string) string {
		t.Helper()
		v, err := interpolate(s, vars)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		return v
	}

	var idps, postgres, redis, proxies []string
	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		switch {
		case s.Build.Dockerfile == "deploy/Dockerfile":
			idps = append(idps, name)
		case strings.HasPrefix(s.Image, "postgres:"):
			postgres = append(postgres, name)
		case strings.HasPrefix(s.Image, "redis:"):
			redis = append(redis, name)
		case slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasPrefix(v, "./nginx.conf:") }):
			proxies = append(proxies, name)
		}
	}
	if len(idps) != 2 || len(postgres) != 1 || len(redis) != 1 || len(proxies) != 1 {
		t.Fatalf("services: provider instances %q, postgres %q, redis %q, proxy %q; want two instances sharing one of each", idps, postgres, redis, proxies)
	}
	pg, rd, px := cf.Services[postgres[0]], cf.Services[redis[0]], cf.Services[proxies[0]]
	if pg.Image != "postgres:16" {
		t.Errorf("%s: image %s, want postgres:16", postgres[0], pg.Image)
	}
	if !strings.HasPrefix(rd.Image, "redis:7") {
		t.Errorf("%s: image %s, want redis:7", redis[0], rd.Image)
	}

	a, b := cf.Services[idps[0]], cf.Services[idps[1]]
	if !maps.Equal(a.Environment, b.Environment) {
		t.Errorf("%s and %s have different environments: every instance needs the same configuration", idps[0], idps[1])
	}
	if a.Image != b.Image || a.Build != b.Build || a.EnvFile.Value != b.EnvFile.Value {
		t.Errorf("%s and %s do not run the same image with the same env_file", idps[0], idps[1])
	}
	if key := a.Environment["IDP_SECRET_KEY"]; !strings.HasPrefix(key, "${IDP_SECRET_KEY:?") {
		t.Errorf("IDP_SECRET_KEY is %q, want ${IDP_SECRET_KEY:?...} from the .env file (required, not written in compose.yaml)", key)
	} else if _, err := interpolate(key, envExample); err == nil {
		t.Errorf("%s as shipped (IDP_SECRET_KEY empty) does not stop compose: an operator could start with no key", composePath)
	}
	if _, err := interpolate(a.Environment["IDP_DATABASE_URL"], envExample); err == nil {
		t.Errorf("%s as shipped (POSTGRES_PASSWORD empty) does not stop compose", composePath)
	}

	pgEnv := map[string]string{}
	for k, v := range pg.Environment {
		pgEnv[k] = resolve(postgres[0]+"."+k, v)
	}
	volumes := imageVolumes(t)
	image := imageEnv(t)
	var idpPort int
	for _, name := range idps {
		s := cf.Services[name]
		env := maps.Clone(image)
		for k, v := range s.Environment {
			env[k] = resolve(name+"."+k, v)
		}
		cfg, err := loadConfig("", env)
		if err != nil {
			t.Errorf("%s: the configuration does not load: %v", name, err)
			continue
		}
		if len(cfg.SecretKeyBytes()) != 32 {
			t.Errorf("%s: no secret_key: each instance would generate its own", name)
		}
		db, err := url.Parse(cfg.Database.URL)
		if err != nil || db.Scheme != "postgres" && db.Scheme != "postgresql" {
			t.Errorf("%s: database.url %q is not PostgreSQL", name, cfg.Database.URL)
		} else {
			pw, _ := db.User.Password()
			if db.Hostname() != postgres[0] || db.Port() != "5432" || db.User.Username() != pgEnv["POSTGRES_USER"] ||
				pw != pgEnv["POSTGRES_PASSWORD"] || strings.TrimPrefix(db.Path, "/") != pgEnv["POSTGRES_DB"] {
				t.Errorf("%s: database.url does not match the %s service (host, port 5432, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB)", name, postgres[0])
			}
		}
		if r, err := url.Parse(cfg.Redis.URL); err != nil || r.Hostname() != redis[0] {
			t.Errorf("%s: redis.url %q is not the %s service", name, cfg.Redis.URL, redis[0])
		}
		port := listenPort(t, cfg.Listen)
		if idpPort != 0 && port != idpPort {
			t.Errorf("the instances listen on different ports")
		}
		idpPort = port

		deps := s.dependsOn()
		for _, dep := range []string{postgres[0], redis[0]} {
			if deps[dep] != "service_healthy" {
				t.Errorf("%s: depends_on %s is %q, want condition: service_healthy", name, dep, deps[dep])
			}
		}
		nets := s.networks()
		for _, dep := range []string{postgres[0], redis[0], proxies[0]} {
			if !slices.ContainsFunc(slices.Collect(maps.Keys(cf.Services[dep].networks())), func(n string) bool { _, ok := nets[n]; return ok }) {
				t.Errorf("%s shares no network with %s", name, dep)
			}
		}
		for _, v := range volumes {
			mounted := slices.ContainsFunc(append(slices.Clone(s.Tmpfs), s.Volumes...), func(m string) bool {
				parts := strings.Split(m, ":")
				return slices.Contains(parts, v)
			})
			if !mounted {
				t.Errorf("%s: the image's VOLUME %s is not mounted (tmpfs or volume): Docker would add an anonymous volume", name, v)
			}
		}
		if !slices.ContainsFunc(s.Tmpfs, func(m string) bool { return strings.Split(m, ":")[0] == "/tmp" }) {
			t.Errorf("%s: no tmpfs on /tmp", name)
		}
		if hc := s.Healthcheck; hc != nil && !hc.Disable && (len(hc.Test) < 2 || hc.Test[0] != "CMD" || !strings.HasPrefix(hc.Test[1], "/idp")) {
			t.Errorf("%s: healthcheck %q needs a shell or a tool the distroless image does not have", name, hc.Test)
		}

		// The proxy is the one trusted for X-Forwarded-For, and only its
		// network is.
		var proxyAddr net.IP
		var proxyNet *net.IPNet
		for n, addr := range px.networks() {
			if _, ok := nets[n]; !ok || addr == "" {
				continue
			}
			proxyAddr = net.ParseIP(addr)
			for _, c := range cf.Networks[n].IPAM.Config {
				if _, sub, err := net.ParseCIDR(c.Subnet); err == nil && sub.Contains(proxyAddr) {
					proxyNet = sub
				}
			}
		}
		if proxyAddr == nil || proxyNet == nil {
			t.Errorf("%s: the proxy has no fixed address (ipv4_address inside the network's ipam subnet) on a network shared with %s", proxies[0], name)
			continue
		}
		trusted := false
		for _, p := range cfg.TrustedProxies {
			n, err := config.ParseProxy(p)
			if err != nil {
				t.Errorf("%s: trusted_proxies %q: %v", name, p, err)
				continue
			}
			ones, _ := n.Mask.Size()
			subOnes, _ := proxyNet.Mask.Size()
			if !proxyNet.Contains(n.IP) || ones < subOnes {
				t.Errorf("%s: trusted_proxies %s reaches beyond the proxy's network %s", name, p, proxyNet)
			}
			trusted = trusted || n.Contains(proxyAddr)
		}
		if !trusted {
			t.Errorf("%s: trusted_proxies %q does not include the proxy's address %s", name, cfg.TrustedProxies, proxyAddr)
		}
	}

	for _, name := range slices.Sorted(maps.Keys(cf.Services)) {
		s := cf.Services[name]
		if !s.ReadOnly {
			t.Errorf("%s: read_only is not true", name)
		}
		if s.Restart == "" || s.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
		if !slices.Contains(idps, name) && (s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) == 0) {
			t.Errorf("%s: no healthcheck", name)
		}
	}

	// The proxy: nginx.conf's upstream names both instances on the port
	// they listen on; the proxy listens on the container port it publishes.
	conf, err := parseNginx(readFile(t, "nginx.conf"))
	if err != nil {
		t.Fatalf("nginx.conf: %v", err)
	}
	httpBlocks := conf.all("http")
	if len(httpBlocks) != 1 {
		t.Fatalf("nginx.conf: %d http blocks, want 1", len(httpBlocks))
	}
	upstreams := map[string]nginxDirective{}
	for _, u := range httpBlocks[0].all("upstream") {
		upstreams[u.args[0]] = u
	}
	servers := httpBlocks[0].all("server")
	if len(servers) != 1 {
		t.Fatalf("nginx.conf: %d server blocks, want 1", len(servers))
	}
	srv := servers[0]
	var listens []int
	for _, l := range srv.all("listen") {
		n, err := strconv.Atoi(l.args[0])
		if err != nil {
			t.Errorf("nginx.conf: listen %s: want a bare port", l.args[0])
		}
		listens = append(listens, n)
	}
	if !slices.Equal(listens, []int{8080}) {
		t.Errorf("nginx.conf listens on %v, want 8080", listens)
	}
	if len(px.Ports) != 1 {
		t.Fatalf("%s: ports %q, want one mapping", proxies[0], px.Ports)
	}
	parts := strings.Split(strings.TrimSuffix(px.Ports[0], "/tcp"), ":")
	if cport, _ := strconv.Atoi(parts[len(parts)-1]); len(parts) < 2 || !slices.Contains(listens, cport) {
		t.Errorf("%s publishes %s, but nginx listens on %v", proxies[0], px.Ports[0], listens)
	} else if hport, _ := strconv.Atoi(parts[len(parts)-2]); hport != 8080 {
		t.Errorf("%s publishes port %d on the host, want 8080", proxies[0], hport)
	}

	var proxied, metricsBlocked, forwardedFor bool
	for _, loc := range srv.all("location") {
		if slices.Equal(loc.args, []string{"=", "/metrics"}) {
			for _, d := range loc.block {
				code := 0
				if d.name == "return" && len(d.args) > 0 {
					code, _ = strconv.Atoi(d.args[0])
				}
				metricsBlocked = metricsBlocked || code >= 400 || d.name == "deny" && slices.Equal(d.args, []string{"all"})
			}
		}
		for _, pp := range loc.all("proxy_pass") {
			u, err := url.Parse(pp.args[0])
			if err != nil {
				t.Errorf("nginx.conf: proxy_pass %s: %v", pp.args[0], err)
				continue
			}
			up, ok := upstreams[u.Host]
			if !ok {
				t.Errorf("nginx.conf: proxy_pass %s names no upstream block", pp.args[0])
				continue
			}
			proxied = true
			var hosts []string
			for _, s := range up.all("server") {
				h, p := hostPort(t, s.args[0])
				hosts = append(hosts, h)
				if p != idpPort {
					t.Errorf("nginx.conf: upstream server %s, but the instances listen on port %d (IDP_LISTEN)", s.args[0], idpPort)
				}
			}
			if slices.Sort(hosts); !slices.Equal(hosts, idps) {
				t.Errorf("nginx.conf: upstream %s has servers %q, want the instances %q", u.Host, hosts, idps)
			}
			for _, policy := range []string{"ip_hash", "hash", "least_conn", "random", "sticky"} {
				if len(up.all(policy)) > 0 {
					t.Errorf("nginx.conf: upstream %s uses %s, want round robin", u.Host, policy)
				}
			}
			for _, h := range loc.all("proxy_set_header") {
				forwardedFor = forwardedFor || strings.EqualFold(h.args[0], "X-Forwarded-For")
			}
		}
	}
	if !proxied {
		t.Error("nginx.conf: no location proxies to the upstream")
	}
	if !forwardedFor {
		t.Error("nginx.conf: X-Forwarded-For is not set, so trusted_proxies cannot tell the client's address")
	}
	if !metricsBlocked {
		t.Error("nginx.conf: /metrics is reachable through the public proxy")
	}
}

// ---------------------------------------------------------------------------
// Kubernetes

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sHeader struct {
	APIVersion string  `yaml:"apiVersion"`
	Kind       string  `yaml:"kind"`
	Metadata   k8sMeta `yaml:"metadata"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type securityContext struct {
	RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
	RunAsUser                *int64 `yaml:"runAsUser"`
	ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
	AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
	Privileged               *bool  `yaml:"privileged"`
	Capabilities             struct {
		Drop []string `yaml:"drop"`
		Add  []string `yaml:"add"`
	} `yaml:"capabilities"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type probe struct {
	HTTPGet *struct {
		Path   string    `yaml:"path"`
		Port   yaml.Node `yaml:"port"`
		Scheme string    `yaml:"scheme"`
	} `yaml:"httpGet"`
}

type k8sContainerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		Prefix    string `yaml:"prefix"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Ports          []k8sContainerPort `yaml:"ports"`
	StartupProbe   *probe             `yaml:"startupProbe"`
	LivenessProbe  *probe             `yaml:"livenessProbe"`
	ReadinessProbe *probe             `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext securityContext `yaml:"securityContext"`
	VolumeMounts    []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int           `yaml:"replicas"`
		Selector labelSelector `yaml:"selector"`
		Template struct {
			Metadata k8sMeta `yaml:"metadata"`
			Spec     struct {
				EnableServiceLinks *bool           `yaml:"enableServiceLinks"`
				SecurityContext    securityContext `yaml:"securityContext"`
				Containers         []container     `yaml:"containers"`
				Volumes            []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"configMap"`
					EmptyDir              any `yaml:"emptyDir"`
					PersistentVolumeClaim any `yaml:"persistentVolumeClaim"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sService struct {
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string    `yaml:"name"`
			Port       int       `yaml:"port"`
			TargetPort yaml.Node `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type k8sPDB struct {
	Spec struct {
		MinAvailable yaml.Node     `yaml:"minAvailable"`
		Selector     labelSelector `yaml:"selector"`
	} `yaml:"spec"`
}

type k8sConfigMap struct {
	Data map[string]string `yaml:"data"`
}

type k8sSecret struct {
	Type       string            `yaml:"type"`
	StringData map[string]string `yaml:"stringData"`
	Data       map[string]string `yaml:"data"`
}

// values are the Secret's keys and decoded values.
func (s k8sSecret) values(t *testing.T) map[string]string {
	t.Helper()
	v := maps.Clone(s.StringData)
	if v == nil {
		v = map[string]string{}
	}
	for k, b64 := range s.Data {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Errorf("Secret data %s is not base64: %v", k, err)
		}
		v[k] = string(b)
	}
	return v
}

type k8sObject struct {
	file   string
	header k8sHeader
	node   *yaml.Node
}

// kubernetesObjects decodes every document of every manifest.
func kubernetesObjects(t *testing.T) (files []string, objs []k8sObject) {
	t.Helper()
	entries, err := os.ReadDir(kubernetesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || ext != ".yaml" && ext != ".yml" || e.Name() == filepath.Base(kustomizationPath) {
			continue
		}
		files = append(files, e.Name())
		f := filepath.Join(kubernetesDir, e.Name())
		docs, err := decodeYAML(readFile(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range docs {
			o := k8sObject{file: f, node: d}
			if err := d.Decode(&o.header); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.header.APIVersion == "" || o.header.Kind == "" || o.header.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			objs = append(objs, o)
		}
	}
	return files, objs
}

// one decodes the only object of kind into v.
func one(t *testing.T, objs []k8sObject, kind string, v any) k8sObject {
	t.Helper()
	var found []k8sObject
	for _, o := range objs {
		if o.header.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s objects, want 1", len(found), kind)
	}
	if err := found[0].node.Decode(v); err != nil {
		t.Fatalf("%s: %s: %v", found[0].file, kind, err)
	}
	return found[0]
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort resolves a probe or Service port (a number or a port name).
func containerPort(c container, n yaml.Node) (int, bool) {
	if p, err := strconv.Atoi(n.Value); err == nil && n.Tag == "!!int" {
		return p, true
	}
	for _, p := range c.Ports {
		if p.Name != "" && p.Name == n.Value {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// TestKubernetes: the Deployment runs two hardened replicas whose probes,
// Service and PodDisruptionBudget all point at the right port and labels,
// whose configuration (the ConfigMap's idp.yaml with the Secret's values)
// loads, and kustomization.yaml lists every manifest.
func TestKubernetes(t *testing.T) {
	files, objs := kubernetesObjects(t)

	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, kustomizationPath)), &kust); err != nil {
		t.Fatalf("%s: %v", kustomizationPath, err)
	}
	if got, want := slices.Sorted(slices.Values(kust.Resources)), slices.Sorted(slices.Values(files)); !slices.Equal(got, want) {
		t.Errorf("%s lists %q, the directory has %q", kustomizationPath, got, want)
	}

	var dep k8sDeployment
	var svc k8sService
	var pdb k8sPDB
	var cm k8sConfigMap
	var sec k8sSecret
	one(t, objs, "Deployment", &dep)
	one(t, objs, "Service", &svc)
	one(t, objs, "PodDisruptionBudget", &pdb)
	cmObj := one(t, objs, "ConfigMap", &cm)
	secObj := one(t, objs, "Secret", &sec)
	secrets := sec.values(t)

	spec := dep.Spec.Template.Spec
	podLabels := dep.Spec.Template.Metadata.Labels
	if dep.Spec.Replicas != 2 {
		t.Errorf("Deployment replicas %d, want 2", dep.Spec.Replicas)
	}
	if !subset(dep.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("Deployment selector %v does not select its pod labels %v", dep.Spec.Selector.MatchLabels, podLabels)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	// Service links would give the pods <SERVICE>_PORT and
	// <SERVICE>_SERVICE_HOST variables, which for a Service named idp (or
	// idp-anything) in the namespace start with IDP_: not configuration
	// keys, so the provider would refuse to start.
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Error("enableServiceLinks is not false: Kubernetes would inject <SERVICE>_SERVICE_HOST variables, unknown IDP_ names for the Service idp, which stop the start")
	}
	if len(c.Command) > 0 && !slices.Equal(c.Command, []string{"/idp", "serve"}) {
		t.Errorf("container command %q replaces the image's `/idp serve`", c.Command)
	}

	// Non-root, read-only, no privileges: in the container's context or
	// inherited from the pod's.
	pod, ctr := spec.SecurityContext, c.SecurityContext
	isTrue := func(c, p *bool) bool {
		if c != nil {
			return *c
		}
		return p != nil && *p
	}
	if !isTrue(ctr.RunAsNonRoot, pod.RunAsNonRoot) {
		t.Error("runAsNonRoot is not true")
	}
	for _, u := range []*int64{pod.RunAsUser, ctr.RunAsUser} {
		if u != nil && *u == 0 {
			t.Error("runAsUser is 0 (root)")
		}
	}
	if ctr.ReadOnlyRootFilesystem == nil || !*ctr.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if ctr.AllowPrivilegeEscalation == nil || *ctr.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if ctr.Privileged != nil && *ctr.Privileged {
		t.Error("the container is privileged")
	}
	if !slices.Contains(ctr.Capabilities.Drop, "ALL") || len(ctr.Capabilities.Add) > 0 {
		t.Errorf("capabilities drop %q add %q, want drop [ALL] and nothing added", ctr.Capabilities.Drop, ctr.Capabilities.Add)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no resources.requests.%s", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no resources.limits.memory")
	}

	// The environment: literal values, the Secret's keys, the ConfigMap's.
	env := imageEnv(t)
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Key]
			if ref.Name != secObj.header.Metadata.Name || !ok {
				t.Errorf("env %s: the Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name], fromSecret[e.Name] = v, true
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := cm.Data[ref.Key]
			if ref.Name != cmObj.header.Metadata.Name || !ok {
				t.Errorf("env %s: the ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		}
	}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.SecretRef != nil && ef.SecretRef.Name == secObj.header.Metadata.Name:
			for k, v := range secrets {
				env[ef.Prefix+k], fromSecret[ef.Prefix+k] = v, true
			}
		case ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cmObj.header.Metadata.Name:
			for k, v := range cm.Data {
				env[ef.Prefix+k] = v
			}
		default:
			t.Error("envFrom names neither the Secret nor the ConfigMap of the manifests")
		}
	}
	for _, name := range deploymentSecrets {
		if !fromSecret[name] {
			t.Errorf("%s does not come from the Secret", name)
		}
	}
	for k, v := range secrets {
		if d, err := base64.StdEncoding.DecodeString(v); !strings.Contains(strings.ToUpper(v), "EXAMPLE") &&
			(err != nil || !strings.Contains(strings.ToUpper(string(d)), "EXAMPLE")) {
			t.Errorf("Secret %s: the example value is not marked EXAMPLE", k)
		}
	}

	// The configuration file: where IDP_CONFIG (or --config) points, which
	// is the ConfigMap's idp.yaml mounted there.
	configPath := env["IDP_CONFIG"]
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			configPath = c.Args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			configPath = v
		}
	}
	if configPath == "" {
		t.Fatal("neither IDP_CONFIG nor --config names the configuration file")
	}
	var configKey string
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil || v.ConfigMap.Name != cmObj.header.Metadata.Name {
				continue
			}
			switch {
			case m.SubPath != "" && m.MountPath == configPath:
				configKey = m.SubPath
			case path.Dir(configPath) == m.MountPath && len(v.ConfigMap.Items) == 0:
				configKey = path.Base(configPath)
			case path.Dir(configPath) == m.MountPath:
				for _, it := range v.ConfigMap.Items {
					if it.Path == path.Base(configPath) {
						configKey = it.Key
					}
				}
			}
		}
	}
	data, ok := cm.Data[configKey]
	if !ok {
		t.Fatalf("%s is not a key of the ConfigMap %s mounted there", configPath, cmObj.header.Metadata.Name)
	}
	file := filepath.Join(t.TempDir(), "idp.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(file, env)
	if err != nil {
		t.Fatalf("the ConfigMap's %s with the Deployment's environment does not load:\n%v", configKey, err)
	}
	if len(cfg.SecretKeyBytes()) != 32 {
		t.Error("no secret_key: each replica would generate its own")
	}
	if cfg.Redis.URL == "" {
		t.Error("redis.url is empty: two replicas cannot share pending logins in-process")
	}
	if !strings.HasPrefix(cfg.Database.URL, "postgres") {
		t.Errorf("database.url %q: two replicas need PostgreSQL", cfg.Database.URL)
	}
	writable := false
	for _, m := range c.VolumeMounts {
		writable = writable || m.MountPath == cfg.DataDir && !m.ReadOnly
	}
	if !writable {
		t.Errorf("data_dir %s is not a writable volume mount (the root file system is read-only)", cfg.DataDir)
	}

	// Ports: the probes and the Service reach the port IDP_LISTEN opens.
	port := listenPort(t, cfg.Listen)
	if !slices.ContainsFunc(c.Ports, func(p k8sContainerPort) bool { return p.ContainerPort == port }) {
		t.Errorf("no containerPort %d (listen is %s)", port, cfg.Listen)
	}
	for _, p := range []struct {
		name, path string
		probe      *probe
	}{
		{"readinessProbe", "/readyz", c.ReadinessProbe},
		{"livenessProbe", "/healthz", c.LivenessProbe},
		{"startupProbe", "", c.StartupProbe},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet", p.name)
			continue
		}
		g := p.probe.HTTPGet
		if p.path != "" && g.Path != p.path {
			t.Errorf("%s GET %s, want %s", p.name, g.Path, p.path)
		}
		if g.Path != "/healthz" && g.Path != "/readyz" {
			t.Errorf("%s GET %s is not a health endpoint", p.name, g.Path)
		}
		if got, ok := containerPort(c, g.Port); !ok || got != port {
			t.Errorf("%s port %q is not the listen port %d", p.name, g.Port.Value, port)
		}
		if g.Scheme != "" && g.Scheme != "HTTP" {
			t.Errorf("%s scheme %s: the provider serves plain HTTP behind the Ingress", p.name, g.Scheme)
		}
	}

	if !subset(svc.Spec.Selector, podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	served := false
	for _, p := range svc.Spec.Ports {
		if got, ok := containerPort(c, p.TargetPort); p.Port == 80 && ok && got == port {
			served = true
		}
	}
	if !served {
		t.Errorf("the Service has no port 80 with targetPort %d", port)
	}

	if pdb.Spec.MinAvailable.Value != "1" {
		t.Errorf("PodDisruptionBudget minAvailable %q, want 1", pdb.Spec.MinAvailable.Value)
	}
	if !subset(pdb.Spec.Selector.MatchLabels, podLabels) || !maps.Equal(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PodDisruptionBudget selector %v, want the Deployment's %v", pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels)
	}

	t.Run("kubectl kustomize", func(t *testing.T) {
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Skip("kubectl is not installed")
		}
		out, err := exec.Command(kubectl, "kustomize", kubernetesDir).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("kubectl kustomize %s: %v\n%s", kubernetesDir, err, ee.Stderr)
			}
			t.Fatal(err)
		}
		docs, err := decodeYAML(string(out))
		if err != nil {
			t.Fatal(err)
		}
		if len(docs) != len(objs) {
			t.Errorf("kustomize renders %d objects, the manifests hold %d", len(docs), len(objs))
		}
	})
}

// ---------------------------------------------------------------------------
// systemd

// unitFile maps section -> key -> the values of each assignment, in order.
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, name string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	lines := strings.Split(readFile(t, name), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", name, i+1, line)
			}
			k = strings.TrimSpace(k)
			u[section][k] = append(u[section][k], strings.TrimSpace(v))
		}
	}
	return u
}

func (u unitFile) last(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// TestSystemd: the unit runs `idp serve --config /etc/idp/idp.yaml` as an
// unprivileged user in a tight sandbox, with its secrets from
// /etc/idp/idp.env and its data in the state directory; the example
// configuration loads with the example environment file.
func TestSystemd(t *testing.T) {
	u := parseUnit(t, unitPath)
	svc := "Service"
	get := func(key string) string {
		v, _ := u.last(svc, key)
		return v
	}

	for _, key := range []string{"ProtectHome", "PrivateTmp", "NoNewPrivileges", "MemoryDenyWriteExecute", "LockPersonality", "RestrictNamespaces"} {
		if v, ok := parseBool(get(key)); !ok || !v {
			t.Errorf("%s=%q, want true", key, get(key))
		}
	}
	for key, want := range map[string]string{
		"ProtectSystem":   "strict",
		"Restart":         "on-failure",
		"EnvironmentFile": "/etc/idp/idp.env",
	} {
		if got := get(key); got != want {
			t.Errorf("%s=%q, want %q", key, got, want)
		}
	}
	if caps, ok := u[svc]["CapabilityBoundingSet"]; !ok || slices.ContainsFunc(caps, func(v string) bool { return v != "" }) {
		t.Errorf("CapabilityBoundingSet %q, want one empty assignment (no capabilities)", caps)
	}
	var families []string
	for _, v := range u[svc]["RestrictAddressFamilies"] {
		families = append(families, strings.Fields(v)...)
	}
	if slices.Sort(families); !slices.Equal(families, []string{"AF_INET", "AF_INET6", "AF_UNIX"}) {
		t.Errorf("RestrictAddressFamilies %q, want AF_INET AF_INET6 AF_UNIX", families)
	}
	if !slices.ContainsFunc(u[svc]["SystemCallFilter"], func(v string) bool {
		return !strings.HasPrefix(v, "~") && slices.Contains(strings.Fields(v), "@system-service")
	}) {
		t.Errorf("SystemCallFilter %q does not allow-list @system-service", u[svc]["SystemCallFilter"])
	}

	state := get("StateDirectory")
	if state != "idp" {
		t.Errorf("StateDirectory=%q, want idp", state)
	}
	stateDir := "/var/lib/" + state
	if !slices.ContainsFunc(u[svc]["ReadWritePaths"], func(v string) bool { return slices.Contains(strings.Fields(v), stateDir) }) {
		t.Errorf("ReadWritePaths %q does not include %s", u[svc]["ReadWritePaths"], stateDir)
	}
	if wd := get("WorkingDirectory"); wd != "" && wd != stateDir {
		t.Errorf("WorkingDirectory=%s, want %s (relative paths of the configuration)", wd, stateDir)
	}

	if dyn, _ := parseBool(get("DynamicUser")); !dyn {
		user := get("User")
		if user == "" || user == "root" || user == "0" {
			t.Fatalf("User=%q: the service would run as root (set a dedicated user or DynamicUser=yes)", user)
		}
		if !regexp.MustCompile(`(?m)^u\s+` + regexp.QuoteMeta(user) + `\s`).MatchString(readFile(t, sysusersPath)) {
			t.Errorf("%s does not create the user %s", sysusersPath, user)
		}
	}

	execStart := strings.Fields(get("ExecStart"))
	if len(execStart) < 2 || !path.IsAbs(execStart[0]) || path.Base(execStart[0]) != "idp" || execStart[1] != "serve" {
		t.Fatalf("ExecStart=%q, want /usr/local/bin/idp serve --config ...", get("ExecStart"))
	}
	if execStart[0] != "/usr/local/bin/idp" {
		t.Errorf("ExecStart runs %s, want /usr/local/bin/idp", execStart[0])
	}
	configFile := ""
	for i, w := range execStart {
		if w == "--config" && i+1 < len(execStart) {
			configFile = execStart[i+1]
		}
	}
	if configFile != "/etc/idp/idp.yaml" {
		t.Errorf("ExecStart --config %q, want /etc/idp/idp.yaml", configFile)
	}
	if path.Base(configFile) != path.Base(systemdConfigPath) || path.Base(get("EnvironmentFile"))+".example" != path.Base(systemdEnvPath) {
		t.Errorf("the unit's files (%s, %s) are not the examples %s and %s", configFile, get("EnvironmentFile"), systemdConfigPath, systemdEnvPath)
	}
	if len(u["Install"]["WantedBy"]) == 0 {
		t.Error("no [Install] WantedBy: systemctl enable would do nothing")
	}

	// The example configuration loads with the example environment file,
	// as shipped (one instance) and with its commented lines for more than
	// one instance turned on.
	active, commented := parseEnvFile(t, systemdEnvPath)
	env := map[string]string{}
	for k, v := range active {
		if v == "" {
			v = testSecrets[k]
			if v == "" {
				t.Errorf("%s: %s is empty and the test has no value for it", systemdEnvPath, k)
			}
		}
		env[k] = v
	}
	cfg, err := loadConfig(systemdConfigPath, env)
	if err != nil {
		t.Fatalf("%s with %s does not load:\n%v", systemdConfigPath, systemdEnvPath, err)
	}
	if cfg.DataDir != stateDir {
		t.Errorf("data_dir %s, want the StateDirectory %s (the only writable place)", cfg.DataDir, stateDir)
	}
	if p, ok := strings.CutPrefix(cfg.Database.URL, "sqlite://"); ok && !strings.HasPrefix(p, stateDir+"/") {
		t.Errorf("the SQLite file %s is outside the state directory %s", p, stateDir)
	}
	for _, name := range deploymentSecrets {
		if _, ok := active[name]; !ok {
			if _, ok := commented[name]; !ok {
				t.Errorf("%s does not mention %s", systemdEnvPath, name)
			}
		}
	}
	maps.Copy(env, commented)
	cfg, err = loadConfig(systemdConfigPath, env)
	if err != nil {
		t.Fatalf("%s with every line of %s does not load:\n%v", systemdConfigPath, systemdEnvPath, err)
	}
	if !strings.HasPrefix(cfg.Database.URL, "postgres") || cfg.Redis.URL == "" {
		t.Errorf("with the commented lines of %s on, database.url %q and redis.url %q are not the shared PostgreSQL and Redis", systemdEnvPath, cfg.Database.URL, cfg.Redis.URL)
	}

	analyze, lookErr := exec.LookPath("systemd-analyze")
	t.Run("systemd-analyze verify", func(t *testing.T) {
		if lookErr != nil {
			t.Skip("systemd-analyze is not installed")
		}
		// verify checks that ExecStart's program exists; point it at one
		// that does (this test's binary), everything else unchanged.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(t.TempDir(), filepath.Base(unitPath))
		src := strings.Replace(readFile(t, unitPath), "ExecStart="+execStart[0], "ExecStart="+self, 1)
		if err := os.WriteFile(unit, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
		if err != nil || strings.Contains(string(out), filepath.Base(unitPath)) {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	})
	t.Run("systemd-analyze security", func(t *testing.T) {
		if lookErr != nil {
			t.Skip("systemd-analyze is not installed")
		}
		// --threshold is the exposure times ten: 2.0 is the top of "OK".
		out, err := exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unitPath).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "offline") && strings.Contains(string(out), "unrecognized") {
				t.Skip("this systemd-analyze has no --offline")
			}
			t.Errorf("systemd-analyze security: exposure above 2.0 (or an error): %v\n%s", err, out)
		}
	})
}
