package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hostportal/idp/internal/testenv"
)

// freeAddr returns a loopback address nothing listens on (right now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// syncBuffer is a bytes.Buffer a process writes to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tail is the end of a process's output, for failure messages.
func (b *syncBuffer) tail() string {
	s := b.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// lines returns the first max lines of the output that contain s.
func (b *syncBuffer) lines(s string, max int) string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) && len(out) < max {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// redisServerPath is the redis-server the outage tests start and kill.
const redisServerPath = "/usr/bin/redis-server"

// redisServer is a private redis-server without persistence, on a fixed
// loopback port so that it can be killed and started again where the
// provider expects it.
type redisServer struct {
	t    *testing.T
	addr string
	dir  string
	cmd  *exec.Cmd
	out  *syncBuffer
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	if _, err := os.Stat(redisServerPath); err != nil {
		testenv.Unavailable(t, "redis-server", err)
	}
	r := &redisServer{t: t, addr: freeAddr(t), dir: t.TempDir(), out: &syncBuffer{}}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *redisServer) url() string { return "redis://" + r.addr + "/0" }

// start runs redis-server on r.addr and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command(redisServerPath, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	dieWithTest(r.cmd)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := redisPing(r.addr); err == nil {
			return
		} else if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer PING: %v\n%s", r.addr, err, r.out.tail())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops redis-server at once (SIGKILL), as a crash would.
func (r *redisServer) kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// redisPing sends PING in the inline protocol and expects +PONG.
func redisPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf)
	}
	return nil
}

// tcpProxy forwards a loopback port to a target, and can be cut (the port
// refuses connections and the open ones are closed), resumed on the same
// port, and slowed down (every chunk of bytes, both ways, waits).
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	delay  atomic.Int64 // nanoseconds each chunk waits

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *tcpProxy) forward(client net.Conn) {
	if !p.track(client) {
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil || !p.track(server) {
		client.Close()
		if server != nil {
			server.Close()
		}
		return
	}
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	pipe := func(dst, src net.Conn) {
		defer closeBoth()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if d := time.Duration(p.delay.Load()); d > 0 {
					time.Sleep(d)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(server, client)
	go pipe(client, server)
}

// cut closes the port and every connection through it.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// resume listens on the same port again.
func (p *tcpProxy) resume() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening on %s again: %v", p.addr, err)
	}
	p.serve(ln)
}

// provider is an `idp serve` process of the binary built for the tests.
type provider struct {
	t      *testing.T
	bin    string
	base   string   // http://ADDR: where this process listens
	home   string   // its HOME and data_dir
	env    []string // IDP_* settings, shared with the operator commands
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// providerConfig is what the tests vary: the stores, the issuer and
// the rest of the IDP_* settings.
type providerConfig struct {
	issuer    string // empty: the process's own address
	listen    string // empty: a free port
	database  string
	redis     string // empty: in-process pending store
	prefix    string
	secretKey string
	dataDir   string
	extra     []string // more KEY=VALUE
}

func newProvider(t *testing.T, c providerConfig) *provider {
	t.Helper()
	if c.listen == "" {
		c.listen = freeAddr(t)
	}
	if c.issuer == "" {
		c.issuer = "http://" + c.listen
	}
	if c.dataDir == "" {
		c.dataDir = t.TempDir()
	}
	env := []string{
		"IDP_ISSUER=" + c.issuer,
		"IDP_LISTEN=" + c.listen,
		"IDP_DATABASE_URL=" + c.database,
		"IDP_SECRET_KEY=" + c.secretKey,
		"IDP_DATA_DIR=" + c.dataDir,
		// Cheap hashes keep the tests fast; production uses the defaults.
		"IDP_PASSWORD_ARGON2_MEMORY_KIB=1024",
		"IDP_PASSWORD_ARGON2_ITERATIONS=1",
		"IDP_LOG_FORMAT=text",
		"IDP_LOG_LEVEL=warn",
	}
	if c.redis != "" {
		env = append(env, "IDP_REDIS_URL="+c.redis, "IDP_REDIS_KEY_PREFIX="+c.prefix)
	}
	env = append(env, c.extra...)
	return &provider{t: t, bin: idpBinary(t), base: "http://" + c.listen, home: c.dataDir, env: env}
}

// environ is the process environment: only what the provider needs.
func (p *provider) environ() []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + p.home}, p.env...)
}

// start runs `idp serve` and waits until /healthz answers.
func (p *provider) start() {
	p.t.Helper()
	p.out = &syncBuffer{}
	p.cmd = exec.Command(p.bin, "serve")
	p.cmd.Env = p.environ()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	dieWithTest(p.cmd)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting idp serve: %v", err)
	}
	p.exited = make(chan struct{})
	cmd, exited := p.cmd, p.exited
	go func() { cmd.Wait(); close(exited) }()
	p.t.Cleanup(func() { p.stopProcess(cmd, exited) })

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			p.t.Fatalf("idp serve exited before answering:\n%s", p.out.tail())
		default:
		}
		resp, err := client.Get(p.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("idp serve did not answer /healthz: %v\n%s", err, p.out.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process gracefully (SIGTERM), as an orchestrator does.
func (p *provider) stop() {
	p.t.Helper()
	if !p.stopProcess(p.cmd, p.exited) {
		p.t.Fatalf("idp serve did not stop within 10 s of SIGTERM\n%s", p.out.tail())
	}
}

func (p *provider) stopProcess(cmd *exec.Cmd, exited chan struct{}) bool {
	select {
	case <-exited:
		return true
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return true
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-exited
		return false
	}
}

// command runs an operator command (`idp keys rotate`, ...) on the same
// configuration and returns its standard output.
func (p *provider) command(ctx context.Context, stdin string, args ...string) string {
	p.t.Helper()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		p.t.Fatalf("idp %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// status fetches path from the process itself and returns its status.
func (p *provider) status(path string) (int, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(p.base + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// waitStatus polls path until it answers want, for at most d.
func (p *provider) waitStatus(path string, want int, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		got, err := p.status(path)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer %d within %v (last %d, %v)\n%s", path, want, d, got, err, p.out.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
