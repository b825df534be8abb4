import Foundation
import XCTest

@testable import ServiceCore

/// The id table against a model of it that always knows every id in use (what the table did
/// before it kept that set only after its cursor wrapped): over long random runs with a tiny
/// id space, so the cursor wraps often, the table hands out the same ids, keeps the same
/// cursor, and never an id twice; also across a save and load, and through drafts.
final class StableIDTableTests: XCTestCase {
  private struct Model {
    var ids: [String: UInt32] = [:]
    var cursor: UInt32 = 1
    let maxID: UInt32
    var used: Set<UInt32> { Set(ids.values) }

    func next(_ id: UInt32) -> UInt32 { id == maxID ? 1 : id + 1 }

    mutating func id(for key: String) -> UInt32? {
      if let existing = ids[key] { return existing }
      guard ids.count < maxID else { return nil }
      var candidate = cursor
      while used.contains(candidate) { candidate = next(candidate) }
      ids[key] = candidate
      cursor = next(candidate)
      return candidate
    }

    mutating func retain(only keys: Set<String>) { ids = ids.filter { keys.contains($0.key) } }

    struct Draft {
      var assigned: [String: UInt32] = [:]
      var released: [String: UInt32] = [:]
      var cursor: UInt32
    }

    func id(for key: String, in draft: inout Draft) -> UInt32? {
      if let existing = draft.released.removeValue(forKey: key) { return existing }
      if let existing = ids[key] ?? draft.assigned[key] { return existing }
      guard ids.count + draft.assigned.count < maxID else { return nil }
      var candidate = draft.cursor
      while used.contains(candidate) || draft.assigned.values.contains(candidate) {
        candidate = next(candidate)
      }
      draft.assigned[key] = candidate
      draft.cursor = next(candidate)
      return candidate
    }

    func release(_ key: String, in draft: inout Draft) {
      if draft.assigned.removeValue(forKey: key) != nil { return }
      if let id = ids[key] { draft.released[key] = id }
    }

    mutating func apply(_ draft: Draft) {
      for key in draft.released.keys { ids[key] = nil }
      for (key, id) in draft.assigned { ids[key] = id }
      cursor = draft.cursor
    }
  }

  func testTheTableHandsOutWhatTheModelDoesAcrossWrapsSavesAndDrafts() throws {
    var random = SeededRandom()
    let seed = random.seed
    func next(_ bound: Int) -> Int { random.next(bound) }
    let keys = (0..<9).map { "k\($0)" }
    var wraps = 0
    for run in 0..<40 {
      let maxID = UInt32(1 + next(6))
      var table = StableIDTable<String>(maxID: maxID)
      var model = Model(maxID: maxID)
      for step in 0..<300 {
        let message = "seed \(seed), run \(run), step \(step)"
        let before = table.cursor
        switch next(5) {
        case 0:
          let key = keys[next(keys.count)]
          XCTAssertEqual(table.id(for: key), model.id(for: key), message)
        case 1:
          let kept = Set(keys.filter { _ in next(2) == 0 })
          table.retain(only: kept)
          model.retain(only: kept)
        case 2:
          let data = try JSONEncoder().encode(table)
          table = try JSONDecoder().decode(StableIDTable<String>.self, from: data)
        default:
          var draft = table.draft()
          var modelDraft = Model.Draft(cursor: model.cursor)
          for _ in 0..<(1 + next(4)) {
            let key = keys[next(keys.count)]
            if next(3) == 0 {
              table.release(key, in: &draft)
              model.release(key, in: &modelDraft)
            } else {
              XCTAssertEqual(
                table.id(for: key, in: &draft), model.id(for: key, in: &modelDraft), message)
            }
          }
          table.apply(draft)
          model.apply(modelDraft)
        }
        if table.cursor < before { wraps += 1 }
        XCTAssertEqual(table.ids, model.ids, message)
        XCTAssertEqual(table.cursor, model.cursor, message)
        XCTAssertEqual(Set(table.ids.values).count, table.ids.count, message)
      }
    }
    XCTAssertGreaterThan(wraps, 100, "seed \(seed): the cursor hardly wrapped")
  }
}
