import AgentCore
import BPFKit
import XCTest

@testable import JunctionAgent

/// `--tc-hook` against a kernel with and without tcx (the probe stands in for the kernel).
final class TCHookResolutionTests: XCTestCase {
  func testAutoTakesTCXOnlyWhereTheKernelHasIt() throws {
    XCTAssertEqual(try resolveTCHook(.auto, kernelHasTCX: { true }), .tcx)
    XCTAssertEqual(try resolveTCHook(.auto, kernelHasTCX: { false }), .clsact)
    XCTAssertEqual(try resolveTCHook(.clsact, kernelHasTCX: { true }), .clsact)
    XCTAssertEqual(try resolveTCHook(.tcx, kernelHasTCX: { true }), .tcx)
  }

  func testTCXOnAKernelWithoutItFailsTheStart() {
    XCTAssertThrowsError(try resolveTCHook(.tcx, kernelHasTCX: { false })) {
      XCTAssertTrue("\($0)".contains("no tcx hook"), "\($0)")
    }
  }
}
