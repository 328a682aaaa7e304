package edge

import (
	"path"
	"time"
)

// Retention is how much history one topic keeps.
type Retention struct {
	// MaxEvents is the most events kept; older ones are trimmed on publish.
	MaxEvents int `mapstructure:"max_events"`
	// MaxAge is how long an event is kept.
	MaxAge time.Duration `mapstructure:"max_age"`
}

// RetentionRule applies a Retention to the topics matching Pattern.
type RetentionRule struct {
	// Pattern is a path.Match glob over the topic name, e.g. "room:*".
	Pattern   string `mapstructure:"pattern"`
	Retention `mapstructure:",squash"`
}

// RetentionPolicy picks the retention of each topic: the first matching rule,
// else the default.
type RetentionPolicy struct {
	Default Retention
	Rules   []RetentionRule
}

// DefaultRetention is used when no rule matches and no default is configured:
// 1,000 events or 5 minutes, whichever is less.
var DefaultRetention = Retention{MaxEvents: 1000, MaxAge: 5 * time.Minute}

// For returns the retention of topic.
func (p RetentionPolicy) For(topic string) Retention {
	for _, r := range p.Rules {
		if ok, _ := path.Match(r.Pattern, topic); ok {
			return r.Retention.orDefault()
		}
	}
	return p.Default.orDefault()
}

func (r Retention) orDefault() Retention {
	if r.MaxEvents <= 0 {
		r.MaxEvents = DefaultRetention.MaxEvents
	}
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultRetention.MaxAge
	}
	return r
}
