package uploads

import (
	"context"
	"log/slog"

	xslog "golang.org/x/exp/slog"
)

// tusd v2.9.1 logs through golang.org/x/exp/slog, a separate copy of slog
// whose Handler and Record types are not log/slog's. tusLog forwards its
// records to the service's log/slog handler.
//
// tusd logs every request and response at info level (RequestIncoming,
// ChunkWriteStart, ResponseOutgoing, ...); those become debug, so that a
// busy node's log at info level says what the service did, not every
// PATCH. Warnings and errors stay what they are.
type tusLog struct{ h slog.Handler }

// newTusLogger returns a logger for tusd's Config.Logger that writes to l.
func newTusLogger(l *slog.Logger) *xslog.Logger {
	return xslog.New(tusLog{h: l.With("component", "tusd").Handler()})
}

func tusLevel(l xslog.Level) slog.Level {
	if l < xslog.LevelWarn {
		return slog.LevelDebug
	}
	return slog.Level(l)
}

func (t tusLog) Enabled(ctx context.Context, l xslog.Level) bool {
	return t.h.Enabled(ctx, tusLevel(l))
}

func (t tusLog) Handle(ctx context.Context, r xslog.Record) error {
	out := slog.NewRecord(r.Time, tusLevel(r.Level), r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		out.AddAttrs(tusAttr(a))
		return true
	})
	return t.h.Handle(ctx, out)
}

func (t tusLog) WithAttrs(as []xslog.Attr) xslog.Handler {
	conv := make([]slog.Attr, len(as))
	for i, a := range as {
		conv[i] = tusAttr(a)
	}
	return tusLog{h: t.h.WithAttrs(conv)}
}

func (t tusLog) WithGroup(name string) xslog.Handler {
	return tusLog{h: t.h.WithGroup(name)}
}

// tusAttr converts an attribute; groups are converted member by member,
// everything else goes by its Go value.
func tusAttr(a xslog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if v.Kind() == xslog.KindGroup {
		members := v.Group()
		conv := make([]any, len(members))
		for i, m := range members {
			conv[i] = tusAttr(m)
		}
		return slog.Group(a.Key, conv...)
	}
	return slog.Any(a.Key, v.Any())
}
