package codextest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// event is one SSE event before numbering.
type event struct {
	typ  string
	data map[string]any
}

// frame renders an event the way the backend does: an event line, a data
// line whose JSON starts with type and sequence_number, a blank line.
func frame(typ string, seq int, data map[string]any) []byte {
	rest, _ := json.Marshal(data)
	typQ, _ := json.Marshal(typ)
	b := make([]byte, 0, len(rest)+len(typ)*2+64)
	b = append(b, "event: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"type\":"...)
	b = append(b, typQ...)
	b = append(b, ",\"sequence_number\":"...)
	b = strconv.AppendInt(b, int64(seq), 10)
	if len(rest) > 2 {
		b = append(b, ',')
		b = append(b, rest[1:]...)
	} else {
		b = append(b, '}')
	}
	return append(b, "\n\n"...)
}

// streamEvents writes evs with delay between them, flushing each. It stops
// early when the client goes away.
func streamEvents(ctx context.Context, w http.ResponseWriter, evs []event, delay time.Duration) error {
	rc := http.NewResponseController(w)
	for i, ev := range evs {
		if i > 0 && delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return err
			}
		}
		if _, err := w.Write(frame(ev.typ, i, ev.data)); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
