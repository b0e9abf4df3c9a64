package swarm

import (
	"fmt"
	"math/rand/v2"
)

// ChannelName is the name of channel i (from 0) of a run whose
// Config.ChannelPrefix is prefix.
func ChannelName(prefix string, i int) string { return fmt.Sprintf("%s_%d", prefix, i) }

// NewChannelPrefix is a random channel prefix, the default of
// Config.ChannelPrefix: a caller that must know the channels' names (the
// runner aims faults at the hottest channel's Redis shard) sets it first.
func NewChannelPrefix() string { return "swarm" + randomHex(4) }

// assignment is the channels of this part and its clients.
type assignment struct {
	names   []string // every channel of the run, by global index
	mine    []int    // the global indices this part publishes to
	clients [][]int  // channels of each of this part's clients
	ids     []int    // each of this part's clients' index in the whole run
}

// assign spreads all clients of the run over channels by the
// distribution, deterministically from the seed so that every part of a
// run computes the same assignment, and keeps this part's clients: a
// client belongs to the part that owns its (first) channel, and a client
// with several channels gets them all from that part.
func assign(cfg Config) assignment {
	a := assignment{names: make([]string, cfg.Channels)}
	for i := range a.names {
		a.names[i] = ChannelName(cfg.ChannelPrefix, i)
	}
	part := cfg.Part
	for c := part.Index; c < cfg.Channels; c += part.Count {
		a.mine = append(a.mine, c)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	var zipf *rand.Zipf
	if cfg.Distribution.Kind == DistZipf && cfg.Channels > 1 {
		zipf = rand.NewZipf(rng, cfg.Distribution.S, 1, uint64(cfg.Channels-1))
	}
	for i := range cfg.Clients {
		var first int
		switch cfg.Distribution.Kind {
		case DistOne:
			first = i
		case DistRoundRobin:
			first = i % cfg.Channels
		case DistZipf:
			if zipf != nil {
				first = int(zipf.Uint64())
			}
		default:
			first = rng.IntN(cfg.Channels)
		}
		chans := []int{first}
		if cfg.Distribution.Kind == DistSeveral {
			// More distinct channels of the same part.
			owner := first % part.Count
			inPart := (cfg.Channels - owner + part.Count - 1) / part.Count
			for len(chans) < cfg.Distribution.PerClient {
				c := owner + part.Count*rng.IntN(inPart)
				dup := false
				for _, x := range chans {
					dup = dup || x == c
				}
				if !dup {
					chans = append(chans, c)
				}
			}
		}
		if first%part.Count == part.Index {
			a.clients = append(a.clients, chans)
			a.ids = append(a.ids, i)
		}
	}
	return a
}
