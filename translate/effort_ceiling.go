package translate

import "slices"

// Efforts returns the reasoning effort levels this package knows, low to
// high.
func Efforts() []string { return slices.Clone(effortOrder) }

// capEffort lowers effort to the ceiling max: to the strongest level the
// model supports at or below it (the model's weakest if none is). No
// effort at all means the upstream default, medium: it is capped too when
// the ceiling is lower. Unknown levels and an empty ceiling change
// nothing.
func capEffort(res Resolved, effort, ceiling string) string {
	cr := effortRank(ceiling)
	if cr < 0 {
		return effort
	}
	er := effortRank(effort)
	if effort == "" {
		er = effortRank("medium")
	}
	if er < 0 || er <= cr {
		return effort
	}
	if len(res.Model.Efforts) == 0 {
		return ceiling
	}
	best, bestRank := "", -1
	lowest, lowRank := "", len(effortOrder)
	for _, e := range res.Model.Efforts {
		r := effortRank(e)
		if r < 0 {
			continue
		}
		if r <= cr && r > bestRank {
			best, bestRank = e, r
		}
		if r < lowRank {
			lowest, lowRank = e, r
		}
	}
	switch {
	case best != "":
		return best
	case lowest != "":
		return lowest
	}
	return ceiling
}
