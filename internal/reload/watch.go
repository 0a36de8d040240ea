package reload

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// kubeletData is the symlink through which the kubelet publishes a mounted
// ConfigMap or Secret: every file in the mount is a link into ..data, and an
// update replaces ..data (a rename over it) rather than writing the files.
const kubeletData = "..data"

// watcher reports changes to a set of files. It watches their directories,
// not the files: an editor that saves by renaming a new file over the old
// one, and the kubelet's swap of ..data, both replace the file, and a watch
// on the file itself would follow the old inode and miss the new content.
type watcher struct {
	fs  *fsnotify.Watcher
	log *slog.Logger
	// changed receives a value after a change to a watched file; one
	// pending value stands for any number of changes.
	changed chan struct{}
	done    chan struct{}

	mu    sync.Mutex
	names map[string]map[string]bool // directory -> base names that matter there
}

func newWatcher(log *slog.Logger) (*watcher, error) {
	fs, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch config files: %w", err)
	}
	w := &watcher{fs: fs, log: log, changed: make(chan struct{}, 1), done: make(chan struct{}), names: map[string]map[string]bool{}}
	go w.run()
	return w, nil
}

// set makes files the watched set: their directories are watched, and
// directories no longer needed are dropped.
func (w *watcher) set(files []string) {
	want := map[string]map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			w.log.Warn("config file watch: resolve path; reload with SIGHUP", "file", f, "err", err)
			continue
		}
		dir := filepath.Dir(abs)
		if want[dir] == nil {
			want[dir] = map[string]bool{kubeletData: true}
		}
		want[dir][filepath.Base(abs)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for dir := range w.names {
		if want[dir] == nil {
			_ = w.fs.Remove(dir) // fails only for a directory already gone, whose watch went with it
		}
	}
	for dir, names := range want {
		if w.names[dir] == nil {
			if err := w.fs.Add(dir); err != nil {
				w.log.Warn("config file watch: cannot watch directory; reload with SIGHUP", "dir", dir, "err", err)
				continue
			}
		}
		w.names[dir] = names
	}
	for dir := range w.names {
		if want[dir] == nil {
			delete(w.names, dir)
		}
	}
}

func (w *watcher) run() {
	defer close(w.done)
	for {
		select {
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !w.matters(ev.Name) {
				continue
			}
			select {
			case w.changed <- struct{}{}:
			default: // a change is pending already
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.log.Warn("config file watch", "err", err)
		}
	}
}

// matters reports whether an event on path concerns a watched file.
func (w *watcher) matters(path string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.names[filepath.Dir(path)][filepath.Base(path)]
}

// close ends the watch and its goroutine.
func (w *watcher) close() {
	_ = w.fs.Close() // the only error is from closing twice, which close never does
	<-w.done
}
