<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="en">
  <context>
    <name>FoldersDialog</name>
    <message numerus="yes">
      <source>, %n unreadable</source>
      <translation>
        <numerusform>, %n unreadable</numerusform>
        <numerusform>, %n unreadable</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>IndexStatus</name>
    <message numerus="yes">
      <source>%n file(s) could not be read</source>
      <translation>
        <numerusform>%n file could not be read</numerusform>
        <numerusform>%n files could not be read</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>MainWindow</name>
    <message numerus="yes">
      <source>%n match(es)</source>
      <translation>
        <numerusform>%n match</numerusform>
        <numerusform>%n matches</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>Show %n weaker match(es)</source>
      <translation>
        <numerusform>Show %n weaker match</numerusform>
        <numerusform>Show %n weaker matches</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>Type a description to search your %n photo(s).</source>
      <translation>
        <numerusform>Type a description to search your %n photo.</numerusform>
        <numerusform>Type a description to search your %n photos.</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n photo(s)</source>
      <translation>
        <numerusform>%n photo</numerusform>
        <numerusform>%n photos</numerusform>
      </translation>
    </message>
  </context>
  <context>
    <name>WatchWords</name>
    <message numerus="yes">
      <source>Up to date: %n photo(s)</source>
      <translation>
        <numerusform>Up to date: %n photo</numerusform>
        <numerusform>Up to date: %n photos</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n photo(s) indexed</source>
      <translation>
        <numerusform>%n photo indexed</numerusform>
        <numerusform>%n photos indexed</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n moved or renamed</source>
      <translation>
        <numerusform>%n moved or renamed</numerusform>
        <numerusform>%n moved or renamed</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n removed</source>
      <translation>
        <numerusform>%n removed</numerusform>
        <numerusform>%n removed</numerusform>
      </translation>
    </message>
    <message numerus="yes">
      <source>%n could not be read</source>
      <translation>
        <numerusform>%n could not be read</numerusform>
        <numerusform>%n could not be read</numerusform>
      </translation>
    </message>
  </context>
</TS>