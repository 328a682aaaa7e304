package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"sync"
	"time"
)

// benchOptions are bench's flags.
type benchOptions struct {
	srv             serverFlags
	streams         int
	topic           string
	rate            float64
	events          int
	burst           bool
	publishers      int
	proto           string
	warmup          int
	sources         int
	pid             int
	json            bool
	openTimeout     time.Duration
	drainTimeout    time.Duration
	settle          time.Duration
	dialConcurrency int
}

// validTopic is the server's topic rule, checked here so a typo fails at
// once instead of as 1,000 refused streams.
var validTopic = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// maxBitmapBytes bounds the receivers' delivery bitmaps (streams × events
// bits): a typo like --events 1e9 must fail, not swap.
const maxBitmapBytes = 1 << 30

// runBench implements `edgectl bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "bench [--streams N] [--events N] [--rate R | --burst] [--proto http1|h2c] ...", stderr)
	var o benchOptions
	o.srv.register(fs)
	fs.IntVar(&o.streams, "streams", 1000, "streams to open")
	fs.StringVar(&o.topic, "topic", "bench", "topic every stream follows and the events go to")
	fs.Float64Var(&o.rate, "rate", 20, "events published per second")
	fs.IntVar(&o.events, "events", 200, "events to publish and measure")
	fs.BoolVar(&o.burst, "burst", false, "publish back to back, ignoring --rate: the server's publish path sets the pace")
	fs.IntVar(&o.publishers, "publishers", 1, "publishes in flight at once; above 1 the rate holds when answers are slow, and n order is not publish order (out-of-order is not counted)")
	fs.StringVar(&o.proto, "proto", "http1", "stream protocol: http1 (a connection per stream) or h2c (HTTP/2 prior knowledge)")
	fs.IntVar(&o.warmup, "warmup", 0, "events delivered to every stream before the measured run (not counted); memory is measured again after them")
	fs.IntVar(&o.sources, "sources", 1, "source addresses 127.0.0.1…127.0.0.N to spread connections over (more ephemeral ports)")
	fs.IntVar(&o.pid, "pid", 0, "server pid: read RSS from /proc/PID/status (default: process_resident_memory_bytes from /metrics). "+
		"Measure on a freshly started server: Go keeps memory it freed, so a second run on the same server reads low")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.DurationVar(&o.openTimeout, "open-timeout", 60*time.Second, "longest wait for all streams to open; the run goes on with those open")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 10*time.Second, "longest wait for deliveries after the last publish")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause before reading the server's memory, so it reflects the new state")
	fs.IntVar(&o.dialConcurrency, "dial-concurrency", 256, "streams being opened at once")
	if err := fs.Parse(args); err != nil {
		return flagStatus(err)
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(stderr, "edgectl bench:", err)
		return exitUsage
	}
	rep, err := bench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "edgectl bench:", err)
		return exitFail
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "edgectl bench:", err)
			return exitFail
		}
	} else {
		rep.writeText(stdout)
	}
	return exitOK
}

// validate rejects flags that cannot make a meaningful run, before any
// connection is made.
func (o *benchOptions) validate() error {
	switch {
	case o.streams < 1:
		return errors.New("--streams must be at least 1")
	case o.events < 1:
		return errors.New("--events must be at least 1")
	case o.warmup < 0:
		return errors.New("--warmup must not be negative")
	case !o.burst && !(o.rate > 0 && o.rate <= 1e6):
		return errors.New("--rate must be above 0 and at most 1e6 (or use --burst)")
	case !validTopic.MatchString(o.topic):
		return fmt.Errorf("--topic %q does not match %s", o.topic, validTopic)
	case o.dialConcurrency < 1:
		return errors.New("--dial-concurrency must be at least 1")
	case float64(o.streams)*float64(o.events+o.warmup+128)/8 > maxBitmapBytes:
		return fmt.Errorf("--streams × --events is too large to track (over %d MiB of bitmaps)", maxBitmapBytes>>20)
	}
	return nil
}

// bench runs the load test: measure, open, measure, publish, collect.
func bench(ctx context.Context, o benchOptions, progress io.Writer) (*benchReport, error) {
	if err := checkFileLimit(o.proto, o.streams); err != nil {
		return nil, err
	}
	base, err := url.Parse(o.srv.server)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	if o.proto == "h2c" && base.Scheme != "http" {
		return nil, errors.New("--proto h2c needs an http:// server")
	}
	dialer, err := newSourceDialer(o.sources, base)
	if err != nil {
		return nil, err
	}
	transport, err := streamTransport(o.proto, o.streams, dialer)
	if err != nil {
		return nil, err
	}
	defer transport.CloseIdleConnections()
	streamURL, err := o.srv.endpoint("/v1/stream", url.Values{"topic": {o.topic}})
	if err != nil {
		return nil, err
	}
	metricsURL, _ := o.srv.endpoint("/metrics", nil)
	publishURL, _ := o.srv.endpoint("/v1/topics/"+o.topic+"/events", nil)
	header := http.Header{}
	o.srv.authorize(header)

	// Publishing and sampling use their own HTTP/1.1 connections, apart
	// from the streams' transport.
	ctrl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}
	defer ctrl.CloseIdleConnections()
	samp := &sampler{client: ctrl, metricsURL: metricsURL, header: header, pid: o.pid}
	runID := rand.Int64()
	pub := &publisher{client: ctrl, url: publishURL, header: header, runID: runID, errs: &errorLog{}, inFlight: o.publishers}

	rep := &benchReport{
		Server: o.srv.server, Proto: o.proto, Topic: o.topic, Sources: o.sources,
		Streams: o.streams, Events: o.events, WarmupEvents: o.warmup, Burst: o.burst,
	}
	if !o.burst {
		rep.Rate = o.rate
	}
	rep.Memory.Source = "metrics"
	if o.pid > 0 {
		rep.Memory.Source = "proc"
	}
	if rep.Memory.Before, err = samp.Sample(ctx); err != nil {
		return nil, err
	}

	// The streams live in their own context: a signal ends the phases
	// early, and the streams are then stopped here, after the last count.
	runCtx, failRun := context.WithCancelCause(context.Background())
	defer failRun(nil)
	shared := &benchShared{
		client:  &http.Client{Transport: transport},
		url:     streamURL,
		header:  header,
		runID:   runID,
		events:  o.events,
		warmup:  o.warmup,
		dialSem: make(chan struct{}, o.dialConcurrency),
		latency: &histogram{},
		errs:    &errorLog{},
		fail:    func(err error) { failRun(err) },
	}
	streams := newBenchStreams(o.streams, o.events, o.warmup)
	cancels := make([]context.CancelFunc, len(streams))
	var wg sync.WaitGroup
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}
	defer stop()

	// Open.
	openStart := time.Now()
	for i := range streams {
		sctx, cancel := context.WithCancel(runCtx)
		cancels[i] = cancel
		wg.Go(func() { streams[i].run(sctx, shared) })
	}
	allOpen := func() bool { return shared.opened.Load() == int64(o.streams) }
	lastReport := time.Now()
	waitUntil(ctx, runCtx, openStart.Add(o.openTimeout), allOpen, func() {
		if time.Since(lastReport) >= 2*time.Second {
			lastReport = time.Now()
			fmt.Fprintf(progress, "edgectl bench: %d/%d streams open\n", shared.opened.Load(), o.streams)
		}
	})
	if runCtx.Err() != nil {
		return nil, context.Cause(runCtx)
	}
	rep.OpenSeconds = time.Since(openStart).Seconds()
	// From here on, only the streams open now count.
	var open []*benchStream
	for i := range streams {
		if streams[i].state.CompareAndSwap(streamConnecting, streamAbandoned) {
			cancels[i]()
			continue
		}
		open = append(open, &streams[i])
	}
	rep.Open = len(open)
	if len(open) == 0 {
		stop()
		return nil, fmt.Errorf("no stream opened within %v: %v", o.openTimeout, shared.errs.list())
	}
	if !sleepCtx(ctx, o.settle) {
		rep.Interrupted = true
	}
	if rep.Memory.Idle, err = samp.Sample(context.Background()); err != nil {
		return nil, err
	}

	// Warm up.
	if o.warmup > 0 && !rep.Interrupted {
		res := pub.run(ctx, o.warmup, o.rate, o.burst, func(i int) int64 { return -int64(i) - 1 })
		want := int64(len(open)) * int64(res.ok)
		rep.WarmupComplete = waitUntil(ctx, runCtx, time.Now().Add(o.drainTimeout), func() bool {
			return sumCounter(open, func(s *benchStream) int64 { return s.warmed.Load() }) >= want
		}, nil)
		rep.Interrupted = ctx.Err() != nil || !sleepCtx(ctx, o.settle)
		warm, err := samp.Sample(context.Background())
		if err != nil {
			return nil, err
		}
		rep.Memory.AfterWarm = &warm
		pub.hist = histogram{} // warmup publishes are not the measured ones
	}

	// Measure.
	var res publishResult
	if !rep.Interrupted {
		res = pub.run(ctx, o.events, o.rate, o.burst, func(i int) int64 { return int64(i) })
		want := int64(len(open)) * int64(res.ok)
		waitUntil(ctx, runCtx, time.Now().Add(o.drainTimeout), func() bool {
			return sumCounter(open, func(s *benchStream) int64 { return s.unique.Load() }) >= want
		}, nil)
		rep.Interrupted = ctx.Err() != nil
	}
	stop()
	if runCtx.Err() != nil {
		return nil, context.Cause(runCtx)
	}

	rep.ConnectErrors = connectErrors(streams)
	rep.fill(o, open, shared, dialer, pub, res)
	return rep, nil
}

// connectErrors sums the failed connection attempts of all streams,
// abandoned ones included.
func connectErrors(streams []benchStream) int64 {
	var n int64
	for i := range streams {
		n += streams[i].connectErrs
	}
	return n
}

// sumCounter adds up one counter over the streams.
func sumCounter(streams []*benchStream, get func(*benchStream) int64) int64 {
	var n int64
	for _, s := range streams {
		n += get(s)
	}
	return n
}

// waitUntil polls done every 20 ms until it holds, the deadline passes or
// either context ends, calling tick (when set) each round. It reports
// whether done held. Polling, not a signal per event: the counters are
// bumped millions of times and only read here.
func waitUntil(ctx, runCtx context.Context, deadline time.Time, done func() bool, tick func()) bool {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if tick != nil {
			tick()
		}
		select {
		case <-ctx.Done():
			return false
		case <-runCtx.Done():
			return false
		case <-t.C:
		}
	}
}

// sleepCtx waits d, reporting false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
