package gnutar_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"log"

	"github.com/cargohash/cargohash/hash/gnutar"
)

func ExampleWriter() {
	var buf bytes.Buffer
	tw := gnutar.NewWriter(&buf)
	data := []byte("#!/bin/sh\necho hello\n")
	for _, h := range []*gnutar.Header{
		{Name: "demo-vendor", Typeflag: gnutar.TypeDir},
		{Name: "demo-vendor/hello", Typeflag: gnutar.TypeReg, Mode: 0o700, Size: int64(len(data))},
		{Name: "demo-vendor/link", Typeflag: gnutar.TypeSymlink, Linkname: "hello"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			log.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(data); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(buf.Len(), "bytes")

	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%c %o %d %s", h.Typeflag, h.Mode, h.ModTime.Unix(), h.Name)
		if h.Linkname != "" {
			fmt.Print(" -> ", h.Linkname)
		}
		fmt.Println()
	}
	// Output:
	// 10240 bytes
	// 5 755 1 demo-vendor/
	// 0 755 1 demo-vendor/hello
	// 2 777 1 demo-vendor/link -> hello
}
