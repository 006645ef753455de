<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1">
<context>
    <name>AcquireWorker</name>
    <message>
        <source>Unexpected error: {error}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>CrashDialog</name>
    <message>
        <source>photosearch ran into a problem</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The details were saved to {path}.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The details could not be saved to a file.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Something went wrong that photosearch did not expect. Your photos and your library are safe. {where} Please copy the text below into a bug report.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Copy</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>FilterBar</name>
    <message>
        <source>All folders</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>From</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>until</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>All file types</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Filters:</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>FoldersDialog</name>
    <message>
        <source>Folders</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>photosearch finds photos in these folders and keeps up with changes.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Photos</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Indexed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Status</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Add folder…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remove</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Rescan</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>offline (photos kept)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>indexing</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>up to date</source>
        <translation type="unfinished"></translation>
    </message>
    <message numerus="yes">
        <source>, %n unreadable</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <source>No folders yet: add one.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Choose a folder of photos</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remove folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stop searching {path}? Its photos leave the library; the files themselves are not touched.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>IndexStatus</name>
    <message>
        <source>Pause</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Indexing paused: {done} of {total}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Indexing {done} of {total}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · {rate:.1f} photos/s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · about {left} left</source>
        <translation type="unfinished"></translation>
    </message>
    <message numerus="yes">
        <source>%n file(s) could not be read</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
</context>
<context>
    <name>InstalledPacks</name>
    <message>
        <source>Pack</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Languages</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refine</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>State</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Use</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remove…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>verified</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>damaged: {why}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{name} (active)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>yes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>no</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Model packs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Your photos are being encoded with {name}; searches keep using the current pack until that is done, then switch.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Remove {name} and forget the vectors it made?</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>It is the active pack: search needs another one after.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>photosearch</source>
        <extracomment>a result list was shown (fast or refined): tests and the benchmark wait on it</extracomment>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Describe a photo…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Searching by example: click to stop</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refine top</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>off</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>How many of the best matches the slower, more exact model re-reads (0 = fast results only)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Best match first</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Newest first</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Order of the matches: by relevance, or by date taken</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Filters</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Photos below the relevance cut-off: less likely to be what you described</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Thumbnail size</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Library</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Folders…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Model packs…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Settings…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Files that could not be &amp;read…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Show &amp;scores</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Filters</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Find</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ctrl+F</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Go to the search field</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Esc</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Clear the search; close the viewer</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Enter</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Search now; open the chosen photo</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Tab, arrows</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Move into the results and through them</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ctrl+Shift+F</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Show or hide the filters</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ctrl+L</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Folders</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ctrl+,</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Settings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>F1</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This list</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Ctrl+Q</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Quit</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Keyboard shortcuts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>none installed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>About photosearch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&lt;h3&gt;photosearch {version}&lt;/h3&gt;&lt;p&gt;Finds photos on your own disks from a typed description. Everything runs on this computer; nothing is sent anywhere.&lt;/p&gt;&lt;p&gt;Model pack: {pack}&lt;/p&gt;&lt;p&gt;photosearch is MIT-licensed. It uses Qt for Python (LGPL 3), ONNX Runtime (MIT), FAISS (MIT), Pillow (MIT-CMU) and NumPy (BSD). Each model pack has its own licence: see &lt;i&gt;Library ▸ Model packs…&lt;/i&gt;.&lt;/p&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Type a description to search your photos.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;Keyboard shortcuts</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&amp;About photosearch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>on {device}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No photos yet. Add a folder of photos (Library → Folders…); they can be searched as soon as they are indexed.</source>
        <translation type="unfinished"></translation>
    </message>
    <message numerus="yes">
        <source>Type a description to search your %n photo(s).</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <source>Try:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Checking and installing the model pack…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Like {name} ✕</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Searching…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No good match for “{text}”. The closest photos:</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>this example</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Hide weaker matches</source>
        <translation type="unfinished"></translation>
    </message>
    <message numerus="yes">
        <source>Show %n weaker match(es)</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <source>No photos match. Try other words, or clear the filters.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No photos match. Try describing it in other words.</source>
        <translation type="unfinished"></translation>
    </message>
    <message numerus="yes">
        <source>%n photo(s)</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n match(es)</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <source> · top {k} refined · {ms:.0f} ms</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · refining the top {k}…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · {ms:.0f} ms</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · too long: the model read the first {n} words</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This model pack has no relevance calibration: photos are shown by rank, without a match score or cut-off.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This search could not run: {reason}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Open</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Show in folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Copy path</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Copy image</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Find similar photos</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The image could not be copied: {reason}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Image copied</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Switching to {pack}: your photos are re-encoded in the background; search keeps using the current model until then</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ModelsDialog</name>
    <message>
        <source>owner/name on Hugging Face, or https://…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Model packs</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Install</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Installed</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import folder…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import zip…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Get a model</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Prepare: {title}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Another pack: a Hugging Face repository or web address</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Search uses the active pack. Add another, switch, or remove one here.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>photosearch needs a model pack to understand photos. Choose one below: it is downloaded once, after that everything works offline.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A pack exported by photosearch (its manifest.json is checked).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>About {size} MB to download from {source}.
Speed: {speed}
Quality: {quality}
Languages: {languages}
Licence: {licence}
Refine: no. This model searches fast only; refining the top results needs a reranker, which packs prepared here carry (pip install &apos;photosearch[export]&apos;, then Prepare).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>About {download} MB to download, {size} MB installed; exported here.
Speed: {speed}
Quality: {quality}
Languages: English
Refine: yes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Needs the export tools, which this installation does not have (pip install &apos;photosearch[export]&apos;).</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import a model pack folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import a zipped model pack</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Zip files (*.zip)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Type a Hugging Face repository or a web address.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Starting…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stopping…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>, about {left} left</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{step}: {done} of {total} ({rate}/s{eta})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Installed {name}. Everything now works offline.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Stopped. Press Resume to continue where it stopped.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Resume</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Nothing was installed: {why}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Try again</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ResultDelegate</name>
    <message>
        <source>offline</source>
        <extracomment>Below this side a file name would shrink to a few letters: only the tooltip has it.</extracomment>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>ResultsModel</name>
    <message>
        <source>rank {rank}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>relevance {percent}%</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> (a weaker match)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source> · ✓ refined: checked by the slower, more exact model</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Model pack</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Automatic (a working GPU, else the CPU)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>CPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>GPU</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Run models on</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>off (fast only)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refine the top</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>the pack&apos;s own</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Refinement weight (β)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Thumbnail cache</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>automatic</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Threads</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>A new model pack takes over once your photos are re-encoded with it. Device and threads apply the next time photosearch starts.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>UnreadableDialog</name>
    <message>
        <source>Files that could not be read</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>These files were skipped. They are tried again when they change; nothing else needs doing.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Every file could be read.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>File</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Reason</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>Viewer</name>
    <message>
        <source>Loading…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>This photo cannot be shown: {reason}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WatchWords</name>
    <message numerus="yes">
        <source>Up to date: %n photo(s)</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n photo(s) indexed</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n moved or renamed</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n removed</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message numerus="yes">
        <source>%n could not be read</source>
        <translation type="unfinished">
            <numerusform></numerusform>
        </translation>
    </message>
    <message>
        <source>Library updated</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{path} is offline (unplugged or unmounted?); its photos are kept</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{path} is back</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Watching {path} for changes</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{path}: checked every {s:g} s ({reason})</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Indexing failed: {reason}. Trying again in {s:g} s</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>WelcomeView</name>
    <message>
        <source>Welcome to photosearch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Find photos on your own disks by describing them. Everything stays on this computer.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&lt;b&gt;1. The model&lt;/b&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Get a model pack…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Prepare the recommended pack, or download a ready one (once; then offline)</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Import a model pack folder…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>&lt;b&gt;2. Folders to search&lt;/b&gt;</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Add folder…</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Start searching</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Installed: {name}</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>The installed model pack cannot be used: {problem}. Get a model pack again, or import a pack folder.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No model pack is installed yet. photosearch needs one to understand photos: &lt;b&gt;Get a model pack…&lt;/b&gt; downloads one (about 600 MB, once; then everything works offline), or import a pack folder. From a terminal: &lt;code&gt;photosearch models download&lt;/code&gt; (a ready model, no torch needed; &lt;code&gt;photosearch models available&lt;/code&gt; lists them), &lt;code&gt;photosearch models prepare&lt;/code&gt;, or try &lt;code&gt;photosearch demo&lt;/code&gt;.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>No folders yet: add the folders that hold your photos.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>First get a model pack and add a folder</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>First get a model pack</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>First add a folder of photos</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Choose a folder of photos</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Choose a model pack folder</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>app</name>
    <message>
        <source>photosearch</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>photosearch is already open for this library.</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>Another photosearch window, or an indexing run in a terminal, is using the library in {folder}. Switch to that window, or close it and try again.</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>duration</name>
    <message>
        <source>{n} s</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{n} min</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{h} h {m} min</source>
        <translation type="unfinished"></translation>
    </message>
</context>
<context>
    <name>viewer</name>
    <message>
        <source>size unknown</source>
        <translation type="unfinished"></translation>
    </message>
    <message>
        <source>{name} — {folder}
{date} · {size} · {dims}</source>
        <translation type="unfinished"></translation>
    </message>
</context>
</TS>
