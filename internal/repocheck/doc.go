// Package repocheck holds tests about the repository itself rather than
// about one package: that it explains itself without documents a
// maintainer of this repository does not have.
package repocheck
