package dashboard

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Price is an OpenAI API list price in USD per 1M tokens.
type Price struct {
	Input       float64 `json:"input"`
	CachedInput float64 `json:"cached_input"`
	Output      float64 `json:"output"`
}

// FallbackPriceModel is the key of the price used for models not in the
// table. Config can override it like any model.
const FallbackPriceModel = "*"

// DefaultPrices are API list prices (USD per 1M tokens) used for the
// overview's "API-equivalent value". They are estimates to adjust: set
// Config.Prices (Caddyfile: price <model> <input> <cached input> <output>)
// when the list prices change or for other models.
var DefaultPrices = map[string]Price{
	"gpt-5.5":             {Input: 1.25, CachedInput: 0.125, Output: 10},
	"gpt-5.4":             {Input: 1.25, CachedInput: 0.125, Output: 10},
	"gpt-5.4-mini":        {Input: 0.25, CachedInput: 0.025, Output: 2},
	"gpt-5.3-codex":       {Input: 1.25, CachedInput: 0.125, Output: 10},
	"gpt-5.3-codex-spark": {Input: 0.25, CachedInput: 0.025, Output: 2},
	FallbackPriceModel:    {Input: 1.25, CachedInput: 0.125, Output: 10},
}

// PriceTable looks up a model's price: DefaultPrices with overrides.
type PriceTable map[string]Price

// NewPriceTable merges overrides (model name → price, FallbackPriceModel
// for unknown models) over DefaultPrices. Model names match without regard
// to case.
func NewPriceTable(overrides map[string]Price) PriceTable {
	t := PriceTable{}
	for m, p := range DefaultPrices {
		t[strings.ToLower(m)] = p
	}
	for m, p := range overrides {
		t[strings.ToLower(strings.TrimSpace(m))] = p
	}
	return t
}

// ValidatePrices checks that prices are finite and not negative.
func ValidatePrices(prices map[string]Price) error {
	for m, p := range prices {
		if strings.TrimSpace(m) == "" {
			return fmt.Errorf("dashboard: price for an empty model name")
		}
		for _, f := range []float64{p.Input, p.CachedInput, p.Output} {
			if f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				return fmt.Errorf("dashboard: price for %s must be finite and not negative", m)
			}
		}
	}
	return nil
}

// Lookup returns model's price, or the fallback for unknown models.
func (t PriceTable) Lookup(model string) Price {
	if p, ok := t[strings.ToLower(strings.TrimSpace(model))]; ok {
		return p
	}
	return t[FallbackPriceModel]
}

// Cost is what the tokens cost at price p, in USD. Cached tokens are part
// of input tokens and billed at the cached rate; reasoning tokens are part
// of output tokens, so they are not passed separately.
func (p Price) Cost(input, cached, output int64) float64 {
	cached = max(min(cached, input), 0)
	uncached := max(input-cached, 0)
	output = max(output, 0)
	return (float64(uncached)*p.Input + float64(cached)*p.CachedInput + float64(output)*p.Output) / 1e6
}

// Value is the API-equivalent value of a set of requests.
type Value struct {
	USD      float64
	Requests int64
}

// valueOf sums the API-equivalent value of records at or after since,
// grouping tokens by model first.
func (t PriceTable) valueOf(records []vault.LogRecord, since time.Time) Value {
	type toks struct{ in, cached, out int64 }
	by := map[string]*toks{}
	var v Value
	for _, r := range records {
		if r.Time.Before(since) {
			continue
		}
		v.Requests++
		k := by[r.Model]
		if k == nil {
			k = &toks{}
			by[r.Model] = k
		}
		k.in += r.InputTokens
		k.cached += r.CachedTokens
		k.out += r.OutputTokens
	}
	for m, k := range by {
		v.USD += t.Lookup(m).Cost(k.in, k.cached, k.out)
	}
	return v
}

// usd formats dollars: $0.42, $12.30, $1,234.
func usd(f float64) string {
	switch {
	case f < 0.005 && f > 0:
		return "< $0.01"
	case f >= 1000:
		return "$" + number(int64(math.Round(f)))
	}
	return fmt.Sprintf("$%.2f", f)
}

// maxValueRecords bounds how many request log records the overview reads
// to compute the API-equivalent value.
const maxValueRecords = 10000

// valuePage is how many records one RecentRequests call returns (the
// vault's maximum).
const valuePage = 1000

// savings is the overview's API-equivalent value card.
type savings struct {
	Today, Week Value
	// Capped says the week's figure covers only the newest Limit
	// requests, so it is an underestimate.
	Capped bool
	Limit  int64
}

// savingsOf reads the user's request log back to since (at most
// maxValueRecords records) and prices today's and the window's tokens.
func (d *Dashboard) savingsOf(userID string, today, since time.Time) (savings, error) {
	var recs []vault.LogRecord
	before := time.Time{}
	capped := false
	limit, pageSize := d.valueMax, d.valuePage
	for {
		page, err := d.cfg.Vault.RecentRequests(userID, before, pageSize, vault.StatusAll)
		if err != nil {
			return savings{}, err
		}
		recs = append(recs, page...)
		if len(page) < pageSize || page[len(page)-1].Time.Before(since) {
			break
		}
		if len(recs) >= limit {
			capped = true
			break
		}
		// Paging by time: records sharing the boundary's nanosecond
		// would be skipped, a negligible approximation.
		before = page[len(page)-1].Time
	}
	return savings{Today: d.prices.valueOf(recs, today), Week: d.prices.valueOf(recs, since), Capped: capped, Limit: int64(limit)}, nil
}
