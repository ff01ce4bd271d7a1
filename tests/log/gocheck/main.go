// Command gocheck reads an attest transparency log with Go's golang.org/x/mod/sumdb
// packages (an independent C2SP/sumdb client): it verifies the latest checkpoint with
// note.Open, reads hash tiles through tlog.TileHashReader (which checks every tile against
// the signed tree), proves the inclusion of the records given on stdin ("index hex-of-leaf"
// per line) and, with -old-size/-old-hash, the consistency of an older tree.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type tiles struct{ base string }

func (t tiles) Height() int { return 8 }

func (t tiles) ReadTiles(want []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(want))
	for i, tile := range want {
		// sumdb paths name the height (tile/8/L/N); C2SP tlog-tiles paths do not.
		path := strings.TrimPrefix(tile.Path(), "tile/8/")
		body, err := get(t.base + "/v1/log/tile/" + path)
		if err != nil {
			return nil, err
		}
		out[i] = body
	}
	return out, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func get(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	base := flag.String("url", "", "attest base URL")
	vkey := flag.String("vkey", "", "the log's verifier key")
	oldSize := flag.Int64("old-size", 0, "an older tree size to prove consistency with")
	oldHash := flag.String("old-hash", "", "that tree's root, base64")
	flag.Parse()

	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("vkey: %v", err)
	}
	msg, err := get(*base + "/v1/log/checkpoint")
	if err != nil {
		fail("checkpoint: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("not a checkpoint of %s: %q", verifier.Name(), n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("size: %v", err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		fail("root: %v", err)
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], root)
	reader := tlog.TileHashReader(tree, tiles{*base})

	checked := 0
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) != 2 {
			continue
		}
		index, _ := strconv.ParseInt(fields[0], 10, 64)
		leaf, err := hex.DecodeString(fields[1])
		if err != nil {
			fail("leaf %d: %v", index, err)
		}
		proof, err := tlog.ProveRecord(tree.N, index, reader)
		if err != nil {
			fail("ProveRecord(%d): %v", index, err)
		}
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(leaf)); err != nil {
			fail("CheckRecord(%d): %v", index, err)
		}
		checked++
	}
	if *oldSize > 0 {
		old, err := base64.StdEncoding.DecodeString(*oldHash)
		if err != nil || len(old) != tlog.HashSize {
			fail("old-hash: %v", err)
		}
		var oldTree tlog.Hash
		copy(oldTree[:], old)
		proof, err := tlog.ProveTree(tree.N, *oldSize, reader)
		if err != nil {
			fail("ProveTree: %v", err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, *oldSize, oldTree); err != nil {
			fail("CheckTree: %v", err)
		}
	}
	fmt.Printf("ok %d %d\n", tree.N, checked)
}
