package translate

// The backend rejects a history in which a tool call has no output or an
// output has no call ("No tool output found…" / "No tool call found…",
// docs/protocol.md#tool-pairing). pairer checks the pairing while input items are produced and plans
// the repairs the official client makes.

// abortedOutput is what the official Codex client records for a call that
// never produced an output (e.g. the user interrupted it).
const abortedOutput = "aborted"

// pairCall is one tool call seen in the history.
type pairCall struct {
	id       string
	custom   bool // custom_tool_call: its output item has another type
	batch    int  // index into pairer.batchEnds
	answered bool
}

// pairer tracks calls and outputs in input order.
type pairer struct {
	calls     []pairCall
	byID      map[string]int // call id → index in calls
	batchEnds []int          // item index of the last call of each batch
	lastCall  int            // item index of the most recent call, -1 if none
	pending   int            // number of unanswered calls
}

// newPairer returns an empty pairer.
func newPairer() *pairer { return &pairer{lastCall: -1} }

// call records a tool call emitted as input item number item. Calls on
// consecutive items form one batch; missing outputs are inserted after it.
func (p *pairer) call(item int, id string, custom bool, param string) *Error {
	if id == "" {
		return InvalidRequest(param, codeToolPairing, "tool call at '%s' has no call id", param)
	}
	if _, dup := p.byID[id]; dup {
		return InvalidRequest(param, codeToolPairing, "duplicate tool call id %q at '%s'; every tool call needs its own id", id, param)
	}
	if p.byID == nil {
		p.byID = make(map[string]int)
	}
	if len(p.batchEnds) == 0 || p.lastCall != item-1 {
		p.batchEnds = append(p.batchEnds, item)
	}
	p.batchEnds[len(p.batchEnds)-1] = item
	p.lastCall = item
	p.byID[id] = len(p.calls)
	p.calls = append(p.calls, pairCall{id: id, custom: custom, batch: len(p.batchEnds) - 1})
	p.pending++
	return nil
}

// output records a tool output for id and returns the call id it answers.
// An empty id is accepted when exactly one call is waiting for its output.
func (p *pairer) output(id, param string) (string, *Error) {
	if id == "" {
		switch p.pending {
		case 0:
			return "", InvalidRequest(param, codeToolPairing, "tool output at '%s' has no tool_call_id and no tool call is waiting for an output", param)
		case 1:
			for i := range p.calls {
				if !p.calls[i].answered {
					id = p.calls[i].id
					break
				}
			}
		default:
			return "", InvalidRequest(param, codeToolPairing, "tool output at '%s' has no tool_call_id and %d tool calls are waiting for an output; set tool_call_id", param, p.pending)
		}
	}
	i, ok := p.byID[id]
	if !ok {
		return "", InvalidRequest(param, codeToolPairing, "tool output at '%s' answers call id %q, but no earlier tool call has that id", param, id)
	}
	if p.calls[i].answered {
		return "", InvalidRequest(param, codeToolPairing, "duplicate tool output for call id %q at '%s'", id, param)
	}
	p.calls[i].answered = true
	p.pending--
	return id, nil
}

// isCustom reports whether the call with this id is a custom tool call.
func (p *pairer) isCustom(id string) bool {
	i, ok := p.byID[id]
	return ok && p.calls[i].custom
}

// pairInsert is a synthetic output to add after input item after.
type pairInsert struct {
	after  int
	callID string
	custom bool
}

// missing lists the synthetic outputs for unanswered calls, in item order.
func (p *pairer) missing() []pairInsert {
	if p.pending == 0 {
		return nil
	}
	out := make([]pairInsert, 0, p.pending)
	for _, c := range p.calls {
		if !c.answered {
			out = append(out, pairInsert{after: p.batchEnds[c.batch], callID: c.id, custom: c.custom})
		}
	}
	return out
}

// insertOutputs returns items with mk(ins) placed after each ins.after, in
// one pass.
func insertOutputs[T any](items []T, ins []pairInsert, mk func(pairInsert) T) []T {
	if len(ins) == 0 {
		return items
	}
	out := make([]T, 0, len(items)+len(ins))
	k := 0
	for i, it := range items {
		out = append(out, it)
		for k < len(ins) && ins[k].after == i {
			out = append(out, mk(ins[k]))
			k++
		}
	}
	return out
}
