package vault

import (
	"errors"
	"time"
)

// Back-off between attempts to write request logs while the database is
// unreachable: it starts at logRetryMin and doubles up to logRetryMax, so
// records reach the database within logRetryMax of its return.
const (
	logRetryMin = 200 * time.Millisecond
	logRetryMax = 5 * time.Second
)

// logWriter is the background goroutine's request-log state: the records
// not yet committed and, while the database is unreachable, the back-off.
//
// A batch whose write fails with ErrUnavailable (a server engine that
// cannot reach its database) is kept and retried, and records keep
// arriving into it, up to Options.LogBuffer records; past that the writer
// stops taking from the queue, the queue fills and LogRequest drops and
// counts new records, as it does when the writer falls behind. Any other
// failure drops the batch: a batch the store rejects for good would
// otherwise block the log for ever.
type logWriter struct {
	batch   []LogRecord
	backoff time.Duration    // zero unless the last write found the database unreachable
	retry   *time.Timer      // set while waiting to retry
	retryC  <-chan time.Time // retry.C while waiting, nil otherwise
	failed  int              // failed attempts since the last success, for the log
}

// waiting reports whether a failed batch waits for its retry; no write is
// attempted before then.
func (w *logWriter) waiting() bool { return w.retryC != nil }

// stop releases the retry timer.
func (w *logWriter) stop() {
	if w.retry != nil {
		w.retry.Stop()
	}
}

// logQueue is the channel the writer takes records from: nil (never
// ready) while a retry is pending and the kept records fill the buffer.
func (v *Vault) logQueue(w *logWriter) <-chan LogRecord {
	if w.waiting() && len(w.batch) >= v.opts.LogBuffer {
		return nil
	}
	return v.logCh
}

// flushLogs writes w.batch in commits of at most maxBacklogBatches
// batches. When the database is unreachable it keeps what is left and
// schedules a retry, unless final (the vault is closing), when it drops
// and counts it.
func (v *Vault) flushLogs(w *logWriter, final bool) {
	w.retryC = nil
	for len(w.batch) > 0 {
		n := min(len(w.batch), maxBacklogBatches*v.opts.LogBatchSize)
		err := v.writeLogBatch(w.batch[:n])
		if err != nil && errors.Is(err, ErrUnavailable) && !final {
			v.scheduleLogRetry(w, err)
			return
		}
		if err != nil {
			v.drops.Add(uint64(n))
			v.logError("vault: writing request logs failed; the records are lost", "records", n, "error", err)
		}
		clear(w.batch[:n])
		w.batch = append(w.batch[:0], w.batch[n:]...)
	}
	if w.failed > 0 {
		v.logInfo("vault: request logs written again after the database was unreachable", "failed_attempts", w.failed)
	}
	w.backoff, w.failed = 0, 0
}

// scheduleLogRetry doubles the back-off and arms the retry timer.
func (v *Vault) scheduleLogRetry(w *logWriter, err error) {
	if w.failed == 0 {
		v.logWarn("vault: writing request logs failed, the database is unreachable; keeping the records to retry",
			"records", len(w.batch), "buffer", v.opts.LogBuffer, "error", err)
	}
	w.failed++
	w.backoff = min(max(2*w.backoff, logRetryMin), logRetryMax)
	if w.retry == nil {
		w.retry = time.NewTimer(w.backoff)
	} else {
		w.retry.Reset(w.backoff)
	}
	w.retryC = w.retry.C
}
